/*
 * jwt.h - JSON Web Token verification (RFC 7519 / 7515) and JSON Web Keys
 * (RFC 7517, 7518, 8037) on OpenSSL 3 EVP. Pure logic: no I/O, time is a
 * parameter.
 *
 * The rules that keep this safe (every one is a known attack):
 *  - The accepted algorithms come from the policy, never from the token:
 *    `none` is never accepted, and a token's `alg` must also fit the key
 *    (kty/crv, and the key's own `alg` when the JWK has one): an HS256
 *    token can never be checked against an RSA or EC public key.
 *  - The key comes only from the configured set, selected by `kid`;
 *    headers that carry or point to keys (`jwk`, `jku`, `x5u`, `x5c`) are
 *    rejected, and unknown `crit` extensions are rejected.
 *  - Signatures are checked before any claim is trusted; claims (`exp`
 *    required, `nbf`, `iat`, `iss`, `aud`) are checked with a leeway.
 *  - Sizes are bounded: the token (max_token_bytes), its JSON depth, RSA
 *    keys of at least 2048 bits, ECDSA signatures of the exact size.
 */
#ifndef MG_AUTH_JWT_H
#define MG_AUTH_JWT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum mg_jwt_alg {
	MG_JWT_HS256,
	MG_JWT_HS384,
	MG_JWT_HS512,
	MG_JWT_RS256,
	MG_JWT_RS384,
	MG_JWT_RS512,
	MG_JWT_PS256,
	MG_JWT_PS384,
	MG_JWT_PS512,
	MG_JWT_ES256,
	MG_JWT_ES384,
	MG_JWT_EDDSA,
	MG_JWT_ALG_COUNT
};

/* Parses "HS256" … "EdDSA" (case-sensitive, as in JWS); -1 when unknown. */
int mg_jwt_alg_parse(const char *name);

/* The name of an algorithm. */
const char *mg_jwt_alg_name(enum mg_jwt_alg alg);

/* A set of verification keys, reference-counted (a JWKS cache hands the same
 * set to many requests while it may be replaced by a refresh). */
struct mg_jwk_set;

/* Parses a JWKS document ({"keys": [...]}). Keys that cannot be used for
 * signature verification (unknown kty, `use` other than "sig", key_ops
 * without "verify", private parts present in a public key set, symmetric
 * "oct" keys, RSA under 2048 or over 8192 bits or with an exponent over 32
 * bits, unsupported curves, an `alg` that does not fit the key, malformed
 * members, a `kid` over 255 bytes) are skipped and counted; the set is
 * valid if at least one key remains. Returns NULL with `err` when the
 * document is malformed, larger than 256 KiB, holds more than 100 keys, or
 * has no usable key. */
struct mg_jwk_set *mg_jwk_set_parse(const char *json, size_t len, char *err, size_t err_size);

/* A set holding one HMAC secret (mode = "simple"), usable with HS* only.
 * The secret is copied. With a single key and no kid, a token's `kid` is
 * not consulted. Returns NULL when `len` is 0 or over 64 KiB. */
struct mg_jwk_set *mg_jwk_set_hmac(const void *secret, size_t len);

struct mg_jwk_set *mg_jwk_set_ref(struct mg_jwk_set *set);
void mg_jwk_set_unref(struct mg_jwk_set *set);

/* Number of usable keys, and of keys skipped while parsing. */
size_t mg_jwk_set_count(const struct mg_jwk_set *set);
size_t mg_jwk_set_skipped(const struct mg_jwk_set *set);

/* true when a key with this `kid` is in the set. */
bool mg_jwk_set_has_kid(const struct mg_jwk_set *set, const char *kid);

struct mg_jwt_policy {
	uint32_t algs;               /* bit (1u << mg_jwt_alg) per accepted algorithm */
	const char *issuer;          /* required `iss`, or NULL */
	const char *const *audience; /* accepted `aud` values (one must match), or NULL */
	size_t n_audience;
	int64_t leeway_secs;
	int64_t now;            /* Unix seconds */
	size_t max_token_bytes; /* e.g. 16384; 0 means 16384 */
};

enum mg_jwt_status {
	MG_JWT_OK,
	MG_JWT_MALFORMED,    /* not three base64url parts of JSON objects, too big, ... */
	MG_JWT_BAD_HEADER,   /* typ/crit/jwk/jku/x5u/x5c and friends */
	MG_JWT_ALG_REJECTED, /* alg missing, none, not in the policy, or not fit for the key */
	MG_JWT_UNKNOWN_KID,  /* no key with that kid, or no kid and several keys fit */
	MG_JWT_BAD_SIGNATURE,
	MG_JWT_EXPIRED,       /* exp in the past beyond leeway, or exp missing */
	MG_JWT_NOT_YET_VALID, /* nbf or iat in the future beyond leeway */
	MG_JWT_BAD_ISSUER,
	MG_JWT_BAD_AUDIENCE,
};

/* A short English name for a status ("expired", "bad signature"). */
const char *mg_jwt_status_name(enum mg_jwt_status st);

/* The verified token. */
struct mg_jwt {
	enum mg_jwt_alg alg;
	json_t *header; /* owned */
	json_t *claims; /* owned */
	int64_t exp;    /* 0 when absent (never with MG_JWT_OK) */
};

/* Verifies a compact JWS (`len` bytes, no whitespace) against `keys` and
 * `policy`. On MG_JWT_OK, `out` holds the header and claims (caller frees
 * with mg_jwt_free; `out` may be NULL when only the answer matters).
 * Otherwise `out` is empty and `why` (may be NULL) gets a short reason for
 * logs, never containing the token. */
enum mg_jwt_status mg_jwt_verify(const char *token, size_t len, const struct mg_jwk_set *keys,
                                 const struct mg_jwt_policy *policy, struct mg_jwt *out, char *why,
                                 size_t why_size);

/* The `kid` of a token's header without verifying anything (to decide
 * whether a JWKS refresh is worth it). Returns 0 and copies it, or -1 (no
 * kid, malformed header, or kid longer than kid_size - 1; kids accepted
 * anywhere are at most 255 bytes, so 256 bytes always suffice). */
int mg_jwt_peek_kid(const char *token, size_t len, char *kid, size_t kid_size);

void mg_jwt_free(struct mg_jwt *jwt);

#endif
