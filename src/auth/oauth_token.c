/*
 * oauth_token.c - validated opaque tokens: the cache keyed by token hash,
 * and the reading of introspection (RFC 7662) and userinfo answers.
 *
 * Pure: time is a parameter, no I/O. The provider (oauth_provider.c) asks
 * the authorization server and hands the answer here. What matters for
 * security: `active` must be the JSON value true (not "true", not 1); an
 * answer past its exp is inactive whatever `active` says; a cached identity
 * never outlives the token's exp; refusals are remembered briefly so a flood
 * of one bad token does not become a flood of introspection calls.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/internal.h"
#include "auth/oauth.h"
#include "util/str.h"

#define CACHE_PROBE 8

/* ---- cache --------------------------------------------------------------------------- */

struct cache_entry {
	uint8_t hash[MG_SHA256_LEN];
	bool used;
	struct mg_identity *id; /* NULL: a refusal */
	int64_t until;
};

struct mg_oauth_cache {
	size_t slots;
	struct cache_entry *e;
};

struct mg_oauth_cache *mg_oauth_cache_new(size_t slots)
{
	struct mg_oauth_cache *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	c->slots = slots;
	c->e = calloc(slots, sizeof *c->e);
	if (!c->e) {
		free(c);
		return NULL;
	}
	return c;
}

static void entry_clear(struct cache_entry *e)
{
	mg_identity_unref(e->id);
	memset(e, 0, sizeof *e);
}

void mg_oauth_cache_free(struct mg_oauth_cache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->slots; i++)
		entry_clear(&c->e[i]);
	free(c->e);
	free(c);
}

static size_t slot_of(const struct mg_oauth_cache *c, const uint8_t *hash)
{
	size_t k;
	memcpy(&k, hash, sizeof k);
	return k & (c->slots - 1);
}

enum mg_oauth_cached mg_oauth_cache_get(struct mg_oauth_cache *c, const uint8_t *hash, int64_t now,
                                        struct mg_identity **id)
{
	*id = NULL;
	size_t s = slot_of(c, hash);
	for (size_t i = 0; i < CACHE_PROBE && i < c->slots; i++) {
		struct cache_entry *e = &c->e[(s + i) & (c->slots - 1)];
		if (!e->used || memcmp(e->hash, hash, MG_SHA256_LEN) != 0)
			continue;
		if (now >= e->until) {
			entry_clear(e);
			return MG_OAUTH_MISS;
		}
		if (!e->id)
			return MG_OAUTH_REFUSED;
		*id = mg_identity_ref(e->id);
		return MG_OAUTH_HIT;
	}
	return MG_OAUTH_MISS;
}

void mg_oauth_cache_put(struct mg_oauth_cache *c, const uint8_t *hash, struct mg_identity *id,
                        int64_t until, int64_t now)
{
	if (until <= now)
		return;
	/* The same token's entry, else a free or expired one, else the one
	 * that expires first. */
	size_t s = slot_of(c, hash);
	struct cache_entry *same = NULL, *free_e = NULL, *soonest = NULL;
	for (size_t i = 0; i < CACHE_PROBE && i < c->slots; i++) {
		struct cache_entry *e = &c->e[(s + i) & (c->slots - 1)];
		if (e->used && memcmp(e->hash, hash, MG_SHA256_LEN) == 0)
			same = same ? same : e;
		else if (!e->used || now >= e->until)
			free_e = free_e ? free_e : e;
		else if (!soonest || e->until < soonest->until)
			soonest = e;
	}
	struct cache_entry *victim = same ? same : free_e ? free_e : soonest;
	if (!victim) /* no slots at all */
		return;
	entry_clear(victim);
	memcpy(victim->hash, hash, MG_SHA256_LEN);
	victim->used = true;
	victim->id = mg_identity_ref(id);
	victim->until = until;
}

size_t mg_oauth_cache_count(const struct mg_oauth_cache *c)
{
	size_t n = 0;
	for (size_t i = 0; i < c->slots; i++)
		n += c->e[i].used;
	return n;
}

/* ---- answers ------------------------------------------------------------------------- */

static void refuse(struct mg_oauth_verdict *v, enum mg_auth_status st, int64_t until,
                   const char *why)
{
	v->status = st;
	v->identity = NULL;
	v->cache_until = until;
	snprintf(v->reason, sizeof v->reason, "%s", why);
}

/* The identity an answer describes, or NULL with v->reason. */
static struct mg_identity *identity_of(const struct mg_oauth_config *cfg, json_t *o,
                                       struct mg_oauth_verdict *v)
{
	char idbuf[256];
	if (mg_claim_id(json_object_get(o, cfg->user_id_claim), idbuf, sizeof idbuf) < 0) {
		snprintf(v->reason, sizeof v->reason, "oauth: the answer has no usable \"%s\"",
		         cfg->user_id_claim);
		return NULL;
	}
	struct mg_identity *id = mg_identity_new("oauth", idbuf);
	if (!id) {
		snprintf(v->reason, sizeof v->reason, "out of memory");
		return NULL;
	}
	mg_identity_grant_scopes(id, json_object_get(o, "scope"), &cfg->scope_tool_mapping);
	static const char *const names[] = { "name", "email", "username", "login" };
	for (size_t i = 0; i < sizeof names / sizeof names[0] && !id->display; i++) {
		json_t *n = json_object_get(o, names[i]);
		if (json_is_string(n))
			id->display = mg_strdup(json_string_value(n));
	}
	id->claims = json_incref(o);
	return id;
}

static bool audience_ok(const struct mg_oauth_config *cfg, json_t *aud)
{
	if (!cfg->audience.n)
		return true;
	if (json_is_string(aud))
		return mg_strv_has(&cfg->audience, json_string_value(aud));
	size_t i;
	json_t *a;
	json_array_foreach(aud, i, a)
	{
		if (json_is_string(a) && mg_strv_has(&cfg->audience, json_string_value(a)))
			return true;
	}
	return false;
}

static json_t *parse_object(const char *body, size_t len)
{
	json_error_t je;
	json_t *o = body ? json_loadb(body, len, JSON_REJECT_DUPLICATES, &je) : NULL;
	if (o && !json_is_object(o)) {
		json_decref(o);
		o = NULL;
	}
	return o;
}

void mg_oauth_introspection_verdict(const struct mg_oauth_config *cfg, long http_status,
                                    const char *body, size_t len, int64_t now,
                                    struct mg_oauth_verdict *v)
{
	memset(v, 0, sizeof *v);
	json_t *o = NULL;
	if (http_status != 200) {
		char why[96];
		snprintf(why, sizeof why, "oauth: introspection answered HTTP %ld", http_status);
		refuse(v, MG_AUTH_UNAVAILABLE, 0, why);
		goto out;
	}
	if (!(o = parse_object(body, len))) {
		refuse(v, MG_AUTH_UNAVAILABLE, 0,
		       "oauth: introspection answer is not a JSON object");
		goto out;
	}
	int64_t neg = now + MG_OAUTH_NEGATIVE_TTL;
	if (!json_is_true(json_object_get(o, "active"))) {
		refuse(v, MG_AUTH_INVALID, neg, "oauth: token is not active");
		goto out;
	}
	json_t *exp = json_object_get(o, "exp");
	int64_t e = json_is_integer(exp) ? (int64_t)json_integer_value(exp) : 0;
	if (exp && (!json_is_integer(exp) || e <= now)) {
		refuse(v, MG_AUTH_INVALID, neg, "oauth: token expired");
		goto out;
	}
	json_t *nbf = json_object_get(o, "nbf");
	if (json_is_integer(nbf) && json_integer_value(nbf) > now) {
		refuse(v, MG_AUTH_INVALID, neg, "oauth: token not yet valid (nbf)");
		goto out;
	}
	if (!audience_ok(cfg, json_object_get(o, "aud"))) {
		refuse(v, MG_AUTH_INVALID, neg, "oauth: token issued for another audience");
		goto out;
	}
	if (!(v->identity = identity_of(cfg, o, v))) {
		v->status = MG_AUTH_INVALID;
		v->cache_until = neg;
		goto out;
	}
	v->identity->expires = e;
	v->status = MG_AUTH_OK;
	v->cache_until = now + cfg->cache_duration_secs;
	if (e && e < v->cache_until)
		v->cache_until = e;
out:
	json_decref(o);
}

void mg_oauth_userinfo_verdict(const struct mg_oauth_config *cfg, long http_status,
                               const char *body, size_t len, int64_t now,
                               struct mg_oauth_verdict *v)
{
	memset(v, 0, sizeof *v);
	json_t *o = NULL;
	if (http_status == 401 || http_status == 403) {
		refuse(v, MG_AUTH_INVALID, now + MG_OAUTH_NEGATIVE_TTL,
		       "oauth: userinfo refused the token");
		goto out;
	}
	if (http_status != 200) {
		char why[96];
		snprintf(why, sizeof why, "oauth: userinfo answered HTTP %ld", http_status);
		refuse(v, MG_AUTH_UNAVAILABLE, 0, why);
		goto out;
	}
	if (!(o = parse_object(body, len))) {
		refuse(v, MG_AUTH_UNAVAILABLE, 0, "oauth: userinfo answer is not a JSON object");
		goto out;
	}
	if (!(v->identity = identity_of(cfg, o, v))) {
		v->status = MG_AUTH_INVALID;
		v->cache_until = now + MG_OAUTH_NEGATIVE_TTL;
		goto out;
	}
	v->status = MG_AUTH_OK;
	v->cache_until = now + cfg->cache_duration_secs;
out:
	json_decref(o);
}
