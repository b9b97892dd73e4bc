/*
 * oauth_issuer.c - the state of the authorization-server facade (see
 * oauth_issuer.h): signing key, clients, pending authorizations, grants, and
 * the check of the gateway's own access tokens.
 *
 * Tables are fixed arrays scanned linearly (a gateway has hundreds of
 * clients and logins in flight, not millions); every one is bounded and
 * entries expire. Registrations and authorization requests come from anyone,
 * so when their tables are full the oldest entry makes room (memory never
 * grows, and a flood cannot lock everyone out until entries expire).
 */
#include "auth/oauth_issuer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/internal.h"
#include "util/str.h"

/* A signing key replaced by a reload: accepted and published until `until`
 * (when the last token it signed expires). */
struct retired {
	struct mg_oauth_signer *signer;
	int64_t until;
};

#define MAX_RETIRED 4 /* reloads with a new key within one token lifetime */

struct mg_oauth_issuer {
	int refs;
	struct mg_oauth_signer *signer;      /* signs */
	struct mg_oauth_signer *previous;    /* previous_signing_key_file */
	struct retired retired[MAX_RETIRED]; /* replaced by a reload */
	struct mg_jwk_set *keys;             /* all their public keys, for jwt.c */
	bool signed_any;                     /* the signing key signed a token */
	struct mg_oauth_grants *grants;
	struct mg_oauth_client *clients[MG_OAUTH_MAX_CLIENTS];
	struct mg_oauth_pending *pending; /* MG_OAUTH_MAX_PENDING slots; id[0] == 0: free */
};

/* ---- keys ------------------------------------------------------------------------------- */

static bool retired_live(const struct retired *r, int64_t now)
{
	return r->signer && now < r->until;
}

/* Appends s's public key to `keys` unless a key with its kid is there. */
static void publish(json_t *keys, const struct mg_oauth_signer *s)
{
	size_t i;
	json_t *k;
	json_array_foreach(keys, i, k)
	{
		if (strcmp(json_string_value(json_object_get(k, "kid")), mg_oauth_signer_kid(s)) ==
		    0)
			return;
	}
	json_array_append_new(keys, mg_oauth_signer_jwk(s));
}

json_t *mg_oauth_issuer_jwks(struct mg_oauth_issuer *is, int64_t now)
{
	json_t *keys = json_array();
	publish(keys, is->signer);
	if (is->previous)
		publish(keys, is->previous);
	for (size_t i = 0; i < MAX_RETIRED; i++) {
		if (retired_live(&is->retired[i], now))
			publish(keys, is->retired[i].signer);
	}
	return json_pack("{s:o}", "keys", keys);
}

/* The jwt.c key set of every key accepted at `now`; NULL with `err`. */
static struct mg_jwk_set *keys_of(struct mg_oauth_issuer *is, int64_t now, char *err,
                                  size_t err_size)
{
	json_t *jwks = mg_oauth_issuer_jwks(is, now);
	char *text = json_dumps(jwks, JSON_COMPACT);
	json_decref(jwks);
	struct mg_jwk_set *set = text ? mg_jwk_set_parse(text, strlen(text), err, err_size) : NULL;
	free(text);
	return set;
}

bool mg_oauth_issuer_has_kid(const struct mg_oauth_issuer *is, const char *kid, int64_t now)
{
	if (!is || !kid)
		return false;
	if (strcmp(kid, mg_oauth_signer_kid(is->signer)) == 0 ||
	    (is->previous && strcmp(kid, mg_oauth_signer_kid(is->previous)) == 0))
		return true;
	for (size_t i = 0; i < MAX_RETIRED; i++) {
		const struct retired *r = &is->retired[i];
		if (retired_live(r, now) && strcmp(kid, mg_oauth_signer_kid(r->signer)) == 0)
			return true;
	}
	return false;
}

/* Retires the signing key until `until`: in a free or expired slot, else in
 * the one that expires first. */
static void retire(struct mg_oauth_issuer *is, struct mg_oauth_signer *s, int64_t until,
                   int64_t now)
{
	struct retired *slot = &is->retired[0];
	for (size_t i = 0; i < MAX_RETIRED; i++) {
		struct retired *r = &is->retired[i];
		if (!retired_live(r, now)) {
			slot = r;
			break;
		}
		if (r->until < slot->until)
			slot = r;
	}
	mg_oauth_signer_free(slot->signer);
	*slot = (struct retired){ .signer = s, .until = until };
}

int mg_oauth_issuer_set_keys(struct mg_oauth_issuer *is, const char *key_file,
                             const char *previous_file, int64_t now, char *err, size_t err_size)
{
	struct mg_oauth_signer *cur = NULL, *prev = NULL;
	if (key_file && !(cur = mg_oauth_signer_load(key_file, err, err_size)))
		return -1;
	if (previous_file && !(prev = mg_oauth_signer_load(previous_file, err, err_size))) {
		mg_oauth_signer_free(cur);
		return -1;
	}
	if (cur && strcmp(mg_oauth_signer_kid(cur), mg_oauth_signer_kid(is->signer)) == 0) {
		mg_oauth_signer_free(cur); /* the same key */
	} else if (cur) {
		/* Tokens it signed live MG_OAUTH_ACCESS_SECS: accept them that long
		 * (a key that signed nothing, like the random one of a start, goes). */
		if (is->signed_any)
			retire(is, is->signer, now + MG_OAUTH_ACCESS_SECS + 1, now);
		else
			mg_oauth_signer_free(is->signer);
		is->signer = cur;
		is->signed_any = false;
	}
	mg_oauth_signer_free(is->previous);
	is->previous = prev;
	struct mg_jwk_set *set = keys_of(is, now, err, err_size);
	if (!set)
		return -1;
	mg_jwk_set_unref(is->keys);
	is->keys = set;
	return 0;
}

/* ---- the issuer --------------------------------------------------------------------------- */

struct mg_oauth_issuer *mg_oauth_issuer_new(char *err, size_t err_size)
{
	struct mg_oauth_issuer *is = calloc(1, sizeof *is);
	if (!is) {
		snprintf(err, err_size, "out of memory");
		return NULL;
	}
	is->refs = 1;
	if (!(is->signer = mg_oauth_signer_new(err, err_size)))
		goto fail;
	is->keys = keys_of(is, 0, err, err_size);
	is->grants = mg_oauth_grants_new(MG_OAUTH_MAX_PENDING, 4 * MG_OAUTH_MAX_PENDING,
	                                 MG_OAUTH_FAMILY_SECS);
	is->pending = calloc(MG_OAUTH_MAX_PENDING, sizeof *is->pending);
	if (!is->keys || !is->grants || !is->pending) {
		snprintf(err, err_size, "cannot set up the authorization server");
		goto fail;
	}
	return is;
fail:
	mg_oauth_issuer_unref(is);
	return NULL;
}

struct mg_oauth_issuer *mg_oauth_issuer_ref(struct mg_oauth_issuer *is)
{
	if (is)
		is->refs++;
	return is;
}

void mg_oauth_issuer_unref(struct mg_oauth_issuer *is)
{
	if (!is || --is->refs > 0)
		return;
	mg_oauth_signer_free(is->signer);
	mg_oauth_signer_free(is->previous);
	for (size_t i = 0; i < MAX_RETIRED; i++)
		mg_oauth_signer_free(is->retired[i].signer);
	mg_jwk_set_unref(is->keys);
	mg_oauth_grants_free(is->grants);
	for (size_t i = 0; i < MG_OAUTH_MAX_CLIENTS; i++)
		mg_oauth_client_free(is->clients[i]);
	if (is->pending)
		explicit_bzero(is->pending, MG_OAUTH_MAX_PENDING * sizeof *is->pending);
	free(is->pending);
	free(is);
}

void mg_oauth_issuer_url(const char *resource, char *out, size_t size)
{
	const char *host = strstr(resource, "://");
	host = host ? host + 3 : resource;
	size_t origin = (size_t)(host - resource) + strcspn(host, "/");
	snprintf(out, size, "%.*s", (int)origin, resource);
}

struct mg_oauth_signer *mg_oauth_issuer_signer(struct mg_oauth_issuer *is)
{
	return is->signer;
}

struct mg_oauth_grants *mg_oauth_issuer_grants(struct mg_oauth_issuer *is)
{
	return is->grants;
}

/* ---- clients -------------------------------------------------------------------------- */

const struct mg_oauth_client *mg_oauth_issuer_client(struct mg_oauth_issuer *is,
                                                     const char *client_id, int64_t now)
{
	for (size_t i = 0; client_id && i < MG_OAUTH_MAX_CLIENTS; i++) {
		struct mg_oauth_client *c = is->clients[i];
		if (c && now < c->expires && strcmp(c->client_id, client_id) == 0)
			return c;
	}
	return NULL;
}

int mg_oauth_issuer_add_client(struct mg_oauth_issuer *is, struct mg_oauth_client *c, int64_t now)
{
	struct mg_oauth_client **slot = NULL;
	for (size_t i = 0; i < MG_OAUTH_MAX_CLIENTS; i++) {
		struct mg_oauth_client *o = is->clients[i];
		if (o && strcmp(o->client_id, c->client_id) == 0) {
			slot = &is->clients[i];
			break;
		}
		if (!slot && (!o || now >= o->expires))
			slot = &is->clients[i];
	}
	if (!slot) {
		/* Full of live clients (registration is open to anyone): the
		 * oldest registration makes room, rather than refusing every new
		 * client until one expires. An evicted client gets invalid_client
		 * and registers again. */
		for (size_t i = 0; i < MG_OAUTH_MAX_CLIENTS; i++) {
			if (!slot || is->clients[i]->expires < (*slot)->expires)
				slot = &is->clients[i];
		}
	}
	mg_oauth_client_free(*slot);
	*slot = c;
	return 0;
}

/* ---- pending authorizations ----------------------------------------------------------- */

struct mg_oauth_pending *mg_oauth_issuer_pend(struct mg_oauth_issuer *is,
                                              const struct mg_oauth_pending *p, int64_t now)
{
	/* A free or expired slot, else the oldest authorization makes room
	 * (GET /authorize is open to anyone: a flood must not lock out
	 * everybody for MG_OAUTH_PENDING_SECS). */
	struct mg_oauth_pending *s = NULL;
	for (size_t i = 0; i < MG_OAUTH_MAX_PENDING; i++) {
		struct mg_oauth_pending *e = &is->pending[i];
		if (!e->id[0] || now >= e->expires) {
			s = e;
			break;
		}
		if (!s || e->expires < s->expires)
			s = e;
	}
	if (s) {
		*s = *p;
		uint8_t raw[32];
		if (mg_random_bytes(raw, sizeof raw) < 0)
			return NULL;
		mg_base64_encode(raw, sizeof raw, s->id, sizeof s->id, true);
		s->expires = now + MG_OAUTH_PENDING_SECS;
	}
	return s;
}

struct mg_oauth_pending *mg_oauth_issuer_pending(struct mg_oauth_issuer *is, const char *id,
                                                 int64_t now)
{
	if (!id || strlen(id) != MG_OAUTH_TOKEN_LEN)
		return NULL;
	for (size_t i = 0; i < MG_OAUTH_MAX_PENDING; i++) {
		struct mg_oauth_pending *s = &is->pending[i];
		if (s->id[0] && now < s->expires && mg_ct_equal(s->id, id, MG_OAUTH_TOKEN_LEN))
			return s;
	}
	return NULL;
}

void mg_oauth_issuer_forget(struct mg_oauth_issuer *is, struct mg_oauth_pending *p)
{
	(void)is;
	explicit_bzero(p, sizeof *p);
}

/* ---- tokens --------------------------------------------------------------------------- */

char *mg_oauth_issuer_access_token(struct mg_oauth_issuer *is, const char *issuer,
                                   const struct mg_oauth_grant *gr, uint64_t family, int64_t now)
{
	char sid[24], jti[MG_OAUTH_TOKEN_LEN + 1];
	uint8_t raw[16];
	snprintf(sid, sizeof sid, "%llu", (unsigned long long)family);
	if (mg_random_bytes(raw, sizeof raw) < 0)
		return NULL;
	mg_base64_encode(raw, sizeof raw, jti, sizeof jti, true);
	json_t *c =
	    json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:I,s:I}", "iss", issuer, "aud", gr->resource,
	              "sub", gr->subject, "client_id", gr->client_id, "sid", sid, "jti", jti, "iat",
	              (json_int_t)now, "exp", (json_int_t)(now + MG_OAUTH_ACCESS_SECS));
	if (c && gr->scope[0])
		json_object_set_new(c, "scope", json_string(gr->scope));
	char *tok = c ? mg_oauth_signer_sign(is->signer, c) : NULL;
	is->signed_any |= tok != NULL;
	json_decref(c);
	return tok;
}

enum mg_auth_status mg_oauth_issuer_verify(struct mg_oauth_issuer *is,
                                           const struct mg_oauth_config *cfg, const char *issuer,
                                           const char *resource, const char *tok, size_t len,
                                           int64_t now, struct mg_identity **id, char *reason,
                                           size_t reason_size)
{
	*id = NULL;
	char kid[64];
	if (mg_jwt_peek_kid(tok, len, kid, sizeof kid) < 0 ||
	    !mg_oauth_issuer_has_kid(is, kid, now))
		return MG_AUTH_DECLINED;
	const char *aud[] = { resource };
	struct mg_jwt_policy p = { .algs = 1u << MG_JWT_EDDSA,
		                   .issuer = issuer,
		                   .audience = aud,
		                   .n_audience = 1,
		                   .leeway_secs = 0,
		                   .now = now };
	struct mg_jwt t;
	char why[120] = "";
	enum mg_jwt_status st = mg_jwt_verify(tok, len, is->keys, &p, &t, why, sizeof why);
	if (st != MG_JWT_OK) {
		snprintf(reason, reason_size, "oauth: gateway token %s", mg_jwt_status_name(st));
		return MG_AUTH_INVALID;
	}
	enum mg_auth_status rc = MG_AUTH_INVALID;
	json_t *sid = json_object_get(t.claims, "sid");
	int64_t fam = 0;
	if (!json_is_string(sid) || mg_parse_i64(json_string_value(sid), 1, INT64_MAX, &fam) < 0 ||
	    !mg_oauth_family_active(is->grants, (uint64_t)fam, now)) {
		snprintf(reason, reason_size, "oauth: gateway token revoked");
		goto out;
	}
	char idbuf[256];
	if (mg_claim_id(json_object_get(t.claims, "sub"), idbuf, sizeof idbuf) < 0 ||
	    !(*id = mg_identity_new("oauth", idbuf))) {
		snprintf(reason, reason_size, "oauth: gateway token without a subject");
		goto out;
	}
	mg_identity_grant_scopes(*id, json_object_get(t.claims, "scope"), &cfg->scope_tool_mapping);
	(*id)->claims = json_incref(t.claims);
	(*id)->expires = t.exp;
	rc = MG_AUTH_OK;
out:
	mg_jwt_free(&t);
	return rc;
}
