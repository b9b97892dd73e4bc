/*
 * oauth_state.h - the pure parts of the login flow (GET /oauth/authorize →
 * provider → GET /oauth/callback): PKCE S256 (RFC 7636), the sealed `state`
 * that carries the flow across the provider's redirect, and the bounded
 * cache of used state ids that makes each state single-use.
 *
 * Time is a parameter everywhere; randomness comes from util/crypto.
 */
#ifndef MG_AUTH_OAUTH_STATE_H
#define MG_AUTH_OAUTH_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- PKCE ------------------------------------------------------------------------------ */

#define MG_OAUTH_VERIFIER_LEN  43 /* 32 random bytes, base64url */
#define MG_OAUTH_CHALLENGE_LEN 43 /* SHA-256, base64url */

/* A fresh verifier (43 characters + NUL) and its S256 challenge. 0 or -1
 * (no randomness). */
int mg_oauth_pkce_new(char verifier[MG_OAUTH_VERIFIER_LEN + 1],
                      char challenge[MG_OAUTH_CHALLENGE_LEN + 1]);

/* The S256 challenge of `verifier` (base64url of its SHA-256, no padding). */
void mg_oauth_pkce_challenge(const char *verifier, size_t len,
                             char out[MG_OAUTH_CHALLENGE_LEN + 1]);

/* true when `verifier` has the RFC 7636 §4.1 syntax: 43 to 128 characters
 * of A-Z a-z 0-9 - . _ ~ */
bool mg_oauth_pkce_verifier_ok(const char *verifier);

/* true when `verifier` is well-formed and S256(verifier) equals `challenge`
 * (constant time). */
bool mg_oauth_pkce_check(const char *verifier, const char *challenge);

/* ---- sealed state ----------------------------------------------------------------------- */

#define MG_OAUTH_STATE_ID_LEN  16
#define MG_OAUTH_STATE_TTL     600 /* seconds a login may take */
#define MG_OAUTH_STATE_CTX_MAX 512
#define MG_OAUTH_STATE_MAX     1024 /* longest encoded state accepted */
#define MG_OAUTH_KEY_LEN       32

/* What travels in `state`. The verifier must stay secret from whoever sees
 * the redirect (that is what PKCE defends against), so the state is not
 * only signed but sealed: AES-256-GCM, which authenticates (a forged or
 * altered state fails) and hides the verifier. */
struct mg_oauth_state {
	uint8_t id[MG_OAUTH_STATE_ID_LEN]; /* random: single-use key */
	int64_t exp;                       /* Unix seconds */
	char verifier[129];
	char ctx[MG_OAUTH_STATE_CTX_MAX + 1]; /* caller's context ("" for none) */
};

/* The sealing key from a configured secret: HMAC-SHA256 keyed with the
 * secret over a fixed label (so the secret itself is never the AES key). */
void mg_oauth_state_key(const void *secret, size_t len, uint8_t key[MG_OAUTH_KEY_LEN]);

/* Seals `st` into `out` (base64url, NUL-terminated). Returns the length, or
 * -1 when `out` is too small or a field is too long. */
int mg_oauth_state_seal(const uint8_t key[MG_OAUTH_KEY_LEN], const struct mg_oauth_state *st,
                        char *out, size_t size);

/* Opens a state received at `now`: -1 with `err` when it is malformed,
 * forged (wrong key, altered), or expired. */
int mg_oauth_state_open(const uint8_t key[MG_OAUTH_KEY_LEN], const char *s, size_t len, int64_t now,
                        struct mg_oauth_state *st, char *err, size_t err_size);

/* ---- single use ------------------------------------------------------------------------- */

/* The ids of states already used, each kept until its state expires (after
 * that the state is refused anyway). A fixed-size table: when it is full of
 * live ids, new ones are refused (fail closed) rather than an old one
 * forgotten. */
struct mg_oauth_replay;

struct mg_oauth_replay *mg_oauth_replay_new(size_t slots /* power of two */);
void mg_oauth_replay_free(struct mg_oauth_replay *r);

/* Marks `id` used until `exp`: 0 the first time, -1 when it was already
 * used (a replay), -2 when the table is full. */
int mg_oauth_replay_use(struct mg_oauth_replay *r, const uint8_t id[MG_OAUTH_STATE_ID_LEN],
                        int64_t exp, int64_t now);

#endif
