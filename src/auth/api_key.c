/*
 * api_key.c - API keys: `Authorization: Bearer mcp_…` or `X-API-Key`.
 *
 * The presented key is hashed (SHA-256) and compared with every configured
 * hash in constant time, always all of them: the time taken says nothing
 * about which key matched or how much of one did. The configuration holds
 * only hashes; a key never reaches a log.
 */
#include <stdlib.h>
#include <string.h>

#include "auth/internal.h"
#include "util/crypto.h"

struct api_key_entry {
	uint8_t hash[MG_SHA256_LEN];
	const struct mg_api_key_config *cfg;
	struct mg_identity *id; /* built on first use, shared (identities are immutable) */
};

struct api_key_provider {
	struct mg_auth_provider base;
	struct api_key_entry *keys;
	size_t n;
};

static struct mg_identity *identity_for(const struct mg_api_key_config *k)
{
	struct mg_identity *id = mg_identity_new("api_key", k->id);
	if (!id)
		return NULL;
	mg_strv_copy(&id->allowed_tools, &k->allowed_tools);
	mg_strv_copy(&id->allowed_resources, &k->allowed_resources);
	mg_strv_copy(&id->allowed_prompts, &k->allowed_prompts);
	id->rate_limit = (double)k->rate_limit;
	return id;
}

static enum mg_auth_status api_key_authenticate(struct mg_auth_provider *p,
                                                const struct mg_auth_request *r,
                                                struct mg_auth_outcome *out, struct mg_auth_wait *w)
{
	struct api_key_provider *ak = (struct api_key_provider *)p;
	(void)w;
	size_t len = 0;
	const char *key = mg_auth_bearer(r->authorization, &len);
	bool header = false;
	if (r->api_key && r->api_key[0]) {
		key = r->api_key;
		len = strlen(r->api_key);
		header = true;
	}
	if (!key)
		return MG_AUTH_DECLINED;
	uint8_t digest[MG_SHA256_LEN];
	mg_sha256(key, len, digest);
	/* No early exit: every hash is compared, the match is selected without
	 * a data-dependent branch on secret bytes. */
	size_t found = ak->n;
	for (size_t i = 0; i < ak->n; i++) {
		size_t hit = mg_ct_equal(digest, ak->keys[i].hash, MG_SHA256_LEN);
		size_t mask = (size_t)0 - hit;
		found = (found & ~mask) | (i & mask);
	}
	if (found < ak->n) {
		struct api_key_entry *e = &ak->keys[found];
		if (!e->id)
			e->id = identity_for(e->cfg);
		if (!e->id)
			return MG_AUTH_UNAVAILABLE;
		out->identity = mg_identity_ref(e->id);
		return MG_AUTH_OK;
	}
	/* A bearer token that is not an mcp_ key may be for another provider. */
	if (!header && !(len > 4 && memcmp(key, "mcp_", 4) == 0))
		return MG_AUTH_DECLINED;
	snprintf(out->reason, sizeof out->reason, "unknown API key");
	return MG_AUTH_INVALID;
}

static void api_key_free(struct mg_auth_provider *p)
{
	struct api_key_provider *ak = (struct api_key_provider *)p;
	for (size_t i = 0; i < ak->n; i++)
		mg_identity_unref(ak->keys[i].id);
	free(ak->keys);
	free(ak);
}

static const struct mg_auth_provider_ops api_key_ops = {
	.name = "api_key",
	.authenticate = api_key_authenticate,
	.free = api_key_free,
};

struct mg_auth_provider *mg_auth_api_key_new(struct mg_auth *a, char *err, size_t err_size)
{
	const struct mg_auth_config *ac = &a->cfg->auth;
	struct api_key_provider *ak = calloc(1, sizeof *ak);
	if (!ak || !(ak->keys = calloc(ac->n_api_keys, sizeof *ak->keys))) {
		free(ak);
		snprintf(err, err_size, "out of memory");
		return NULL;
	}
	for (size_t i = 0; i < ac->n_api_keys; i++) {
		const struct mg_api_key_config *k = &ac->api_keys[i];
		if (mg_base64_decode(k->key_hash, strlen(k->key_hash), ak->keys[i].hash,
		                     MG_SHA256_LEN) != MG_SHA256_LEN) {
			free(ak->keys);
			free(ak);
			snprintf(err, err_size, "auth.api_keys[%zu].key_hash is not a SHA-256 hash",
			         i);
			return NULL;
		}
		ak->keys[i].cfg = k;
	}
	ak->n = ac->n_api_keys;
	ak->base.ops = &api_key_ops;
	ak->base.auth = a;
	return &ak->base;
}
