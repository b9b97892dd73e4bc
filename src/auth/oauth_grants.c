/*
 * oauth_grants.c - authorization codes and refresh-token families (see
 * oauth_grants.h).
 *
 * Both tables are fixed arrays scanned linearly: they hold what one gateway
 * issues to people logging in (hundreds, not millions), and a scan keeps
 * the expiry rules obvious. Secrets are kept as SHA-256 and compared in
 * constant time; a spent code stays in its slot (marked used) until it
 * expires so that its replay is recognised and revokes its family.
 */
#include "auth/oauth_grants.h"

#include <stdlib.h>
#include <string.h>

#include "auth/oauth_state.h"
#include "util/crypto.h"

struct code_entry {
	uint8_t hash[MG_SHA256_LEN];
	int64_t expires; /* 0: free */
	bool used;
	uint64_t family; /* set once redeemed */
	struct mg_oauth_grant grant;
};

struct family_entry {
	uint64_t id; /* 0: free */
	int64_t expires;
	bool revoked;
	uint8_t current[MG_SHA256_LEN];
	bool has_current;
	uint8_t prev[MG_OAUTH_PREV_REFRESH][MG_SHA256_LEN];
	size_t n_prev, prev_next;
	struct mg_oauth_grant grant;
};

struct mg_oauth_grants {
	struct code_entry *codes;
	size_t max_codes;
	struct family_entry *families;
	size_t max_families;
	int64_t family_secs;
	uint64_t next_family;
};

struct mg_oauth_grants *mg_oauth_grants_new(size_t max_codes, size_t max_families,
                                            int64_t family_secs)
{
	struct mg_oauth_grants *g = calloc(1, sizeof *g);
	if (!g)
		return NULL;
	g->codes = calloc(max_codes, sizeof *g->codes);
	g->families = calloc(max_families, sizeof *g->families);
	if (!g->codes || !g->families) {
		mg_oauth_grants_free(g);
		return NULL;
	}
	g->max_codes = max_codes;
	g->max_families = max_families;
	g->family_secs = family_secs;
	g->next_family = 1;
	return g;
}

void mg_oauth_grants_free(struct mg_oauth_grants *g)
{
	if (!g)
		return;
	if (g->codes)
		explicit_bzero(g->codes, g->max_codes * sizeof *g->codes);
	if (g->families)
		explicit_bzero(g->families, g->max_families * sizeof *g->families);
	free(g->codes);
	free(g->families);
	free(g);
}

/* A random token and its hash. */
static int new_token(char out[MG_OAUTH_TOKEN_LEN + 1], uint8_t hash[MG_SHA256_LEN])
{
	uint8_t raw[32];
	if (mg_random_bytes(raw, sizeof raw) < 0)
		return -1;
	mg_base64_encode(raw, sizeof raw, out, MG_OAUTH_TOKEN_LEN + 1, true);
	mg_sha256(out, MG_OAUTH_TOKEN_LEN, hash);
	explicit_bzero(raw, sizeof raw);
	return 0;
}

static void hash_of(const char *tok, uint8_t hash[MG_SHA256_LEN])
{
	mg_sha256(tok, strlen(tok), hash);
}

/* ---- families ------------------------------------------------------------------------- */

static struct family_entry *family_find(const struct mg_oauth_grants *g, uint64_t id)
{
	for (size_t i = 0; id && i < g->max_families; i++) {
		if (g->families[i].id == id)
			return &g->families[i];
	}
	return NULL;
}

static struct family_entry *family_new(struct mg_oauth_grants *g, const struct mg_oauth_grant *gr,
                                       int64_t now)
{
	for (size_t i = 0; i < g->max_families; i++) {
		struct family_entry *f = &g->families[i];
		if (f->id && now < f->expires)
			continue;
		memset(f, 0, sizeof *f);
		f->id = g->next_family++;
		f->expires = now + g->family_secs;
		f->grant = *gr;
		return f;
	}
	return NULL;
}

bool mg_oauth_family_active(const struct mg_oauth_grants *g, uint64_t family, int64_t now)
{
	const struct family_entry *f = family_find(g, family);
	return f && !f->revoked && now < f->expires;
}

void mg_oauth_family_revoke(struct mg_oauth_grants *g, uint64_t family)
{
	struct family_entry *f = family_find(g, family);
	if (f) {
		f->revoked = true;
		/* keep the current token recognisable: presenting it now is REVOKED */
		if (f->has_current) {
			memcpy(f->prev[f->prev_next], f->current, MG_SHA256_LEN);
			f->prev_next = (f->prev_next + 1) % MG_OAUTH_PREV_REFRESH;
			if (f->n_prev < MG_OAUTH_PREV_REFRESH)
				f->n_prev++;
			f->has_current = false;
		}
	}
}

/* ---- codes ---------------------------------------------------------------------------- */

int mg_oauth_code_issue(struct mg_oauth_grants *g, const struct mg_oauth_grant *gr, int64_t now,
                        char code[MG_OAUTH_TOKEN_LEN + 1])
{
	for (size_t i = 0; i < g->max_codes; i++) {
		struct code_entry *c = &g->codes[i];
		if (c->expires && now < c->expires)
			continue;
		memset(c, 0, sizeof *c);
		if (new_token(code, c->hash) < 0)
			return -1;
		c->expires = now + MG_OAUTH_CODE_SECS;
		c->grant = *gr;
		return 0;
	}
	return -1;
}

enum mg_oauth_redeem mg_oauth_code_redeem(struct mg_oauth_grants *g, const char *code,
                                          const char *client_id, const char *redirect_uri,
                                          const char *verifier, int64_t now,
                                          struct mg_oauth_grant *out, uint64_t *family)
{
	uint8_t h[MG_SHA256_LEN];
	*family = 0;
	if (!code)
		return MG_OAUTH_REDEEM_UNKNOWN;
	hash_of(code, h);
	struct code_entry *c = NULL;
	for (size_t i = 0; i < g->max_codes && !c; i++) {
		if (g->codes[i].expires && mg_ct_equal(g->codes[i].hash, h, sizeof h))
			c = &g->codes[i];
	}
	if (!c)
		return MG_OAUTH_REDEEM_UNKNOWN;
	if (c->used) {
		/* The code leaked: whoever redeemed it first may be the attacker. */
		mg_oauth_family_revoke(g, c->family);
		return MG_OAUTH_REDEEM_REPLAY;
	}
	c->used = true;
	if (now >= c->expires)
		return MG_OAUTH_REDEEM_EXPIRED;
	if (!client_id || strcmp(client_id, c->grant.client_id) != 0 || !redirect_uri ||
	    strcmp(redirect_uri, c->grant.redirect_uri) != 0 ||
	    !mg_oauth_pkce_check(verifier, c->grant.code_challenge))
		return MG_OAUTH_REDEEM_MISMATCH;
	struct family_entry *f = family_new(g, &c->grant, now);
	if (!f)
		return MG_OAUTH_REDEEM_FULL;
	c->family = f->id;
	*out = c->grant;
	*family = f->id;
	return MG_OAUTH_REDEEM_OK;
}

/* ---- refresh tokens ------------------------------------------------------------------- */

int mg_oauth_refresh_issue(struct mg_oauth_grants *g, uint64_t family, int64_t now,
                           char token[MG_OAUTH_TOKEN_LEN + 1])
{
	struct family_entry *f = family_find(g, family);
	if (!f || f->revoked || now >= f->expires)
		return -1;
	if (f->has_current) {
		memcpy(f->prev[f->prev_next], f->current, MG_SHA256_LEN);
		f->prev_next = (f->prev_next + 1) % MG_OAUTH_PREV_REFRESH;
		if (f->n_prev < MG_OAUTH_PREV_REFRESH)
			f->n_prev++;
	}
	if (new_token(token, f->current) < 0)
		return -1;
	f->has_current = true;
	return 0;
}

enum mg_oauth_redeem mg_oauth_refresh_redeem(struct mg_oauth_grants *g, const char *token,
                                             const char *client_id, int64_t now,
                                             struct mg_oauth_grant *out, uint64_t *family)
{
	uint8_t h[MG_SHA256_LEN];
	*family = 0;
	if (!token)
		return MG_OAUTH_REDEEM_UNKNOWN;
	hash_of(token, h);
	for (size_t i = 0; i < g->max_families; i++) {
		struct family_entry *f = &g->families[i];
		if (!f->id)
			continue;
		bool current = f->has_current && mg_ct_equal(f->current, h, sizeof h);
		bool rotated = false;
		for (size_t k = 0; k < f->n_prev && !current; k++)
			rotated |= mg_ct_equal(f->prev[k], h, sizeof h);
		if (!current && !rotated)
			continue;
		if (f->revoked)
			return MG_OAUTH_REDEEM_REVOKED;
		if (now >= f->expires)
			return MG_OAUTH_REDEEM_EXPIRED;
		if (rotated) {
			mg_oauth_family_revoke(g, f->id);
			return MG_OAUTH_REDEEM_REPLAY;
		}
		if (!client_id || strcmp(client_id, f->grant.client_id) != 0)
			return MG_OAUTH_REDEEM_MISMATCH;
		*out = f->grant;
		*family = f->id;
		return MG_OAUTH_REDEEM_OK;
	}
	return MG_OAUTH_REDEEM_UNKNOWN;
}
