/*
 * oauth_signer.h - the facade's own access tokens (issued by POST /token
 * and checked by the OAuth provider): an Ed25519 key, compact EdDSA JWTs (RFC 9068 `at+jwt`)
 * and the JWKS that publishes the public key. Pure apart from key
 * generation (randomness): the claims, including iat/exp, are the caller's.
 */
#ifndef MG_AUTH_OAUTH_SIGNER_H
#define MG_AUTH_OAUTH_SIGNER_H

#include <jansson.h>
#include <stddef.h>

struct mg_oauth_signer;

/* A new random Ed25519 key; NULL with `err`. */
struct mg_oauth_signer *mg_oauth_signer_new(char *err, size_t err_size);
void mg_oauth_signer_free(struct mg_oauth_signer *s);

/* The Ed25519 private key in the PEM file `path` (read now, blocking: call
 * it while loading a configuration); NULL with `err`, which names the file
 * but never holds key material. */
struct mg_oauth_signer *mg_oauth_signer_load(const char *path, char *err, size_t err_size);

/* The key id (base64url of the first 12 bytes of SHA-256 of the public key). */
const char *mg_oauth_signer_kid(const struct mg_oauth_signer *s);

/* {"kty":"OKP","crv":"Ed25519","x":…,"kid":…,"alg":"EdDSA","use":"sig"} (new reference). */
json_t *mg_oauth_signer_jwk(const struct mg_oauth_signer *s);

/* {"keys":[{"kty":"OKP","crv":"Ed25519","x":…,"kid":…,"alg":"EdDSA","use":"sig"}]}
 * (new reference). */
json_t *mg_oauth_signer_jwks(const struct mg_oauth_signer *s);

/* A compact JWS of `claims` with header {"alg":"EdDSA","typ":"at+jwt","kid":…}:
 * malloc'd, or NULL. */
char *mg_oauth_signer_sign(const struct mg_oauth_signer *s, const json_t *claims);

#endif
