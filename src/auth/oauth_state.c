/*
 * oauth_state.c - PKCE, the sealed login `state` and the used-state table
 * (see oauth_state.h).
 *
 * State wire format: base64url( nonce[12] | AES-256-GCM(plaintext) | tag[16] )
 * with the additional data "mcp-guard oauth state v1", and
 * plaintext = id[16] | exp (8 bytes, big endian) | vlen[1] | verifier |
 * clen (2 bytes, big endian) | ctx. A fresh random nonce per state; the key
 * comes from [auth.oauth].state_secret (shared by every instance behind one
 * redirect URI) or is random per process.
 *
 * Pure: no I/O, time as a parameter, OpenSSL EVP for the cipher.
 */
#include "auth/oauth_state.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/crypto.h"

#define NONCE_LEN 12
#define TAG_LEN   16
#define AAD       "mcp-guard oauth state v1"
#define PLAIN_MAX (MG_OAUTH_STATE_ID_LEN + 8 + 1 + 128 + 2 + MG_OAUTH_STATE_CTX_MAX)

/* ---- PKCE ------------------------------------------------------------------------------ */

void mg_oauth_pkce_challenge(const char *verifier, size_t len, char out[MG_OAUTH_CHALLENGE_LEN + 1])
{
	uint8_t h[MG_SHA256_LEN];
	mg_sha256(verifier, len, h);
	mg_base64_encode(h, sizeof h, out, MG_OAUTH_CHALLENGE_LEN + 1, true);
}

int mg_oauth_pkce_new(char verifier[MG_OAUTH_VERIFIER_LEN + 1],
                      char challenge[MG_OAUTH_CHALLENGE_LEN + 1])
{
	uint8_t raw[32];
	if (mg_random_bytes(raw, sizeof raw) < 0)
		return -1;
	mg_base64_encode(raw, sizeof raw, verifier, MG_OAUTH_VERIFIER_LEN + 1, true);
	mg_oauth_pkce_challenge(verifier, MG_OAUTH_VERIFIER_LEN, challenge);
	return 0;
}

bool mg_oauth_pkce_verifier_ok(const char *v)
{
	size_t n = strlen(v);
	if (n < 43 || n > 128)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = v[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '.' || c == '_' || c == '~'))
			return false;
	}
	return true;
}

bool mg_oauth_pkce_check(const char *verifier, const char *challenge)
{
	if (!verifier || !challenge || !mg_oauth_pkce_verifier_ok(verifier) ||
	    strlen(challenge) != MG_OAUTH_CHALLENGE_LEN)
		return false;
	char want[MG_OAUTH_CHALLENGE_LEN + 1];
	mg_oauth_pkce_challenge(verifier, strlen(verifier), want);
	return mg_ct_equal(want, challenge, MG_OAUTH_CHALLENGE_LEN);
}

/* ---- state ------------------------------------------------------------------------------ */

void mg_oauth_state_key(const void *secret, size_t len, uint8_t key[MG_OAUTH_KEY_LEN])
{
	static const char label[] = "mcp-guard oauth state key";
	unsigned int n = MG_OAUTH_KEY_LEN;
	HMAC(EVP_sha256(), secret, (int)len, (const unsigned char *)label, sizeof label - 1, key,
	     &n);
}

/* AES-256-GCM in one direction (util/crypto). Returns the output length or -1. */
static int gcm(bool enc, const uint8_t *key, const uint8_t *nonce, const uint8_t *in, int n,
               uint8_t *out, uint8_t *tag)
{
	return mg_aead_gcm(enc, key, nonce, AAD, sizeof AAD - 1, in, (size_t)n, out, tag);
}

int mg_oauth_state_seal(const uint8_t key[MG_OAUTH_KEY_LEN], const struct mg_oauth_state *st,
                        char *out, size_t size)
{
	uint8_t plain[PLAIN_MAX], sealed[NONCE_LEN + PLAIN_MAX + TAG_LEN];
	size_t vlen = strlen(st->verifier), clen = strlen(st->ctx), p = 0;
	int rc = -1;
	if (vlen > 128 || clen > MG_OAUTH_STATE_CTX_MAX)
		goto out;
	memcpy(plain, st->id, MG_OAUTH_STATE_ID_LEN);
	p = MG_OAUTH_STATE_ID_LEN;
	for (int i = 7; i >= 0; i--)
		plain[p++] = (uint8_t)((uint64_t)st->exp >> (8 * i));
	plain[p++] = (uint8_t)vlen;
	memcpy(plain + p, st->verifier, vlen);
	p += vlen;
	plain[p++] = (uint8_t)(clen >> 8);
	plain[p++] = (uint8_t)clen;
	memcpy(plain + p, st->ctx, clen);
	p += clen;
	if (mg_random_bytes(sealed, NONCE_LEN) < 0)
		goto out;
	int n = gcm(true, key, sealed, plain, (int)p, sealed + NONCE_LEN, sealed + NONCE_LEN + p);
	if (n != (int)p)
		goto out;
	size_t total = NONCE_LEN + p + TAG_LEN;
	if (mg_base64_encoded_len(total, true) + 1 > size)
		goto out;
	rc = (int)mg_base64_encode(sealed, total, out, size, true);
out:
	explicit_bzero(plain, sizeof plain);
	return rc;
}

int mg_oauth_state_open(const uint8_t key[MG_OAUTH_KEY_LEN], const char *s, size_t len, int64_t now,
                        struct mg_oauth_state *st, char *err, size_t err_size)
{
	uint8_t sealed[NONCE_LEN + PLAIN_MAX + TAG_LEN], plain[PLAIN_MAX];
	int rc = -1;
	memset(st, 0, sizeof *st);
	if (len > MG_OAUTH_STATE_MAX) {
		snprintf(err, err_size, "state longer than %d characters", MG_OAUTH_STATE_MAX);
		goto out;
	}
	long n = mg_base64_decode(s, len, sealed, sizeof sealed);
	if (n < NONCE_LEN + TAG_LEN + MG_OAUTH_STATE_ID_LEN + 8 + 1 + 2) {
		snprintf(err, err_size, "state is not one the gateway issued (malformed)");
		goto out;
	}
	int plen = (int)n - NONCE_LEN - TAG_LEN;
	if (gcm(false, key, sealed, sealed + NONCE_LEN, plen, plain, sealed + NONCE_LEN + plen) !=
	    plen) {
		snprintf(err, err_size, "state is not one the gateway issued (bad seal)");
		goto out;
	}
	size_t p = 0;
	memcpy(st->id, plain, MG_OAUTH_STATE_ID_LEN);
	p = MG_OAUTH_STATE_ID_LEN;
	uint64_t exp = 0;
	for (int i = 0; i < 8; i++)
		exp = exp << 8 | plain[p++];
	st->exp = (int64_t)exp;
	size_t vlen = plain[p++];
	if (vlen > 128 || p + vlen + 2 > (size_t)plen) {
		snprintf(err, err_size, "state is malformed");
		goto out;
	}
	memcpy(st->verifier, plain + p, vlen);
	p += vlen;
	size_t clen = (size_t)plain[p] << 8 | plain[p + 1];
	p += 2;
	if (clen > MG_OAUTH_STATE_CTX_MAX || p + clen != (size_t)plen) {
		snprintf(err, err_size, "state is malformed");
		goto out;
	}
	memcpy(st->ctx, plain + p, clen);
	if (now >= st->exp) {
		snprintf(err, err_size, "state expired (the login took more than %d s)",
		         MG_OAUTH_STATE_TTL);
		goto out;
	}
	rc = 0;
out:
	explicit_bzero(plain, sizeof plain);
	if (rc < 0)
		explicit_bzero(st, sizeof *st);
	return rc;
}

/* ---- used states ------------------------------------------------------------------------ */

struct replay_entry {
	uint8_t id[MG_OAUTH_STATE_ID_LEN];
	int64_t exp; /* 0: never used */
};

struct mg_oauth_replay {
	size_t slots;
	struct replay_entry *e;
};

struct mg_oauth_replay *mg_oauth_replay_new(size_t slots)
{
	struct mg_oauth_replay *r = calloc(1, sizeof *r);
	if (!r || !(r->e = calloc(slots, sizeof *r->e))) {
		free(r);
		return NULL;
	}
	r->slots = slots;
	return r;
}

void mg_oauth_replay_free(struct mg_oauth_replay *r)
{
	if (!r)
		return;
	free(r->e);
	free(r);
}

int mg_oauth_replay_use(struct mg_oauth_replay *r, const uint8_t id[MG_OAUTH_STATE_ID_LEN],
                        int64_t exp, int64_t now)
{
	/* Open addressing on the (random) id. Slots are never emptied, only
	 * expired: a probe stops at a never-used slot, and reuses the first
	 * expired one it passed. */
	size_t start;
	memcpy(&start, id, sizeof start);
	struct replay_entry *reuse = NULL;
	for (size_t i = 0; i < r->slots; i++) {
		struct replay_entry *e = &r->e[(start + i) & (r->slots - 1)];
		if (!e->exp) {
			if (!reuse)
				reuse = e;
			break;
		}
		if (memcmp(e->id, id, MG_OAUTH_STATE_ID_LEN) == 0 && now < e->exp)
			return -1;
		if (now >= e->exp && !reuse)
			reuse = e;
	}
	if (!reuse)
		return -2;
	memcpy(reuse->id, id, MG_OAUTH_STATE_ID_LEN);
	reuse->exp = exp > now ? exp : now + 1;
	return 0;
}
