/*
 * oauth_signer.c - Ed25519 keys and EdDSA JWTs for the facade (see
 * oauth_signer.h). Tokens are verified by the same code as any other JWT
 * (jwt.c) through the JWKS this file exports, so the gateway trusts its own
 * tokens exactly as it would an IdP's: algorithm pinned, audience checked.
 */
#include "auth/oauth_signer.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/crypto.h"
#include "util/str.h"

struct mg_oauth_signer {
	EVP_PKEY *key;
	char kid[24];
	char x[48]; /* base64url public key */
};

/* Fills x and kid from s->key; -1 when it is not an Ed25519 key. */
static int set_public(struct mg_oauth_signer *s)
{
	uint8_t pub[32], h[MG_SHA256_LEN];
	size_t publen = sizeof pub;
	if (EVP_PKEY_get_base_id(s->key) != EVP_PKEY_ED25519 ||
	    EVP_PKEY_get_raw_public_key(s->key, pub, &publen) != 1 || publen != 32)
		return -1;
	mg_base64_encode(pub, sizeof pub, s->x, sizeof s->x, true);
	mg_sha256(pub, sizeof pub, h);
	mg_base64_encode(h, 12, s->kid, sizeof s->kid, true);
	return 0;
}

struct mg_oauth_signer *mg_oauth_signer_new(char *err, size_t err_size)
{
	struct mg_oauth_signer *s = calloc(1, sizeof *s);
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
	if (!s || !ctx || EVP_PKEY_keygen_init(ctx) != 1 || EVP_PKEY_keygen(ctx, &s->key) != 1 ||
	    set_public(s) < 0) {
		snprintf(err, err_size, "cannot generate an Ed25519 key");
		EVP_PKEY_CTX_free(ctx);
		mg_oauth_signer_free(s);
		return NULL;
	}
	EVP_PKEY_CTX_free(ctx);
	return s;
}

struct mg_oauth_signer *mg_oauth_signer_load(const char *path, char *err, size_t err_size)
{
	struct mg_oauth_signer *s = calloc(1, sizeof *s);
	FILE *f = s ? fopen(path, "r") : NULL;
	if (!f) {
		snprintf(err, err_size, "cannot read the signing key %s", path);
		free(s);
		return NULL;
	}
	s->key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (!s->key || set_public(s) < 0) {
		snprintf(err, err_size,
		         "%s is not an Ed25519 private key in PEM (make one with: openssl genpkey "
		         "-algorithm ed25519)",
		         path);
		mg_oauth_signer_free(s);
		return NULL;
	}
	return s;
}

void mg_oauth_signer_free(struct mg_oauth_signer *s)
{
	if (!s)
		return;
	EVP_PKEY_free(s->key);
	free(s);
}

const char *mg_oauth_signer_kid(const struct mg_oauth_signer *s)
{
	return s->kid;
}

json_t *mg_oauth_signer_jwk(const struct mg_oauth_signer *s)
{
	return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "kty", "OKP", "crv", "Ed25519", "x", s->x,
	                 "kid", s->kid, "alg", "EdDSA", "use", "sig");
}

json_t *mg_oauth_signer_jwks(const struct mg_oauth_signer *s)
{
	return json_pack("{s:[o]}", "keys", mg_oauth_signer_jwk(s));
}

/* base64url of a JSON value's compact dump into `b`. */
static int put_json(struct mg_buf *b, const json_t *v)
{
	char *text = json_dumps(v, JSON_COMPACT);
	int rc = -1;
	if (text) {
		size_t n = strlen(text), need = mg_base64_encoded_len(n, true) + 1;
		char *enc = malloc(need);
		if (enc) {
			mg_base64_encode(text, n, enc, need, true);
			rc = mg_buf_puts(b, enc);
			free(enc);
		}
		free(text);
	}
	return rc;
}

char *mg_oauth_signer_sign(const struct mg_oauth_signer *s, const json_t *claims)
{
	char *out = NULL;
	struct mg_buf b;
	mg_buf_init(&b, 64 * 1024);
	json_t *hdr = json_pack("{s:s,s:s,s:s}", "alg", "EdDSA", "typ", "at+jwt", "kid", s->kid);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	uint8_t sig[64];
	size_t siglen = sizeof sig;
	char sig64[100];
	if (!hdr || !md || put_json(&b, hdr) < 0 || mg_buf_putc(&b, '.') < 0 ||
	    put_json(&b, claims) < 0)
		goto out;
	if (EVP_DigestSignInit(md, NULL, NULL, NULL, s->key) != 1 ||
	    EVP_DigestSign(md, sig, &siglen, (const uint8_t *)b.data, b.len) != 1 || siglen != 64)
		goto out;
	mg_base64_encode(sig, siglen, sig64, sizeof sig64, true);
	if (mg_buf_putc(&b, '.') < 0 || mg_buf_puts(&b, sig64) < 0)
		goto out;
	out = mg_buf_steal(&b);
out:
	EVP_MD_CTX_free(md);
	json_decref(hdr);
	mg_buf_free(&b);
	return out;
}
