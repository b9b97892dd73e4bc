/*
 * oauth.h - the pure parts of OAuth 2.1 in mcp-guard (no sockets, time as a
 * parameter): form/query encoding and parsing, the cache of validated
 * opaque tokens, and turning an RFC 7662 introspection or OpenID userinfo
 * answer into an identity.
 *
 * The provider that uses them (oauth_provider.c) validates bearer tokens the
 * JWT provider does not accept, by asking the configured authorization
 * server; see docs/authentication.md.
 */
#ifndef MG_AUTH_OAUTH_H
#define MG_AUTH_OAUTH_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/auth.h"
#include "util/buf.h"
#include "util/crypto.h"

/* ---- application/x-www-form-urlencoded ----------------------------------------------- */

#define MG_OAUTH_FORM_MAX_PAIRS 32
#define MG_OAUTH_FORM_MAX_BYTES (16 * 1024)

struct mg_oauth_form {
	size_t n;
	char *key[MG_OAUTH_FORM_MAX_PAIRS]; /* decoded, NUL-terminated */
	char *value[MG_OAUTH_FORM_MAX_PAIRS];
	bool duplicate; /* a key appeared twice (OAuth: an error, RFC 6749 §3.1) */
};

/* Parses `s` (a query string without '?', or a form body) into `f`:
 * '&'-separated pairs, '+' as space, %XX decoded. Refused (-1 with `err`):
 * more than MG_OAUTH_FORM_MAX_PAIRS pairs, more than MG_OAUTH_FORM_MAX_BYTES,
 * a bad %-escape, a decoded NUL or control character, invalid UTF-8.
 * Empty pairs ("a=1&&b=2") are skipped; a key without '=' has the value "".
 * Release with mg_oauth_form_free (also after -1). */
int mg_oauth_form_parse(const char *s, size_t len, struct mg_oauth_form *f, char *err,
                        size_t err_size);
void mg_oauth_form_free(struct mg_oauth_form *f);

/* The value of `key` (the first one), or NULL. */
const char *mg_oauth_form_get(const struct mg_oauth_form *f, const char *key);

/* Appends "&key=value" (no '&' when `b` is empty) with both percent-encoded
 * (unreserved characters kept). 0, or -1 when `b` is full. */
int mg_oauth_form_add(struct mg_buf *b, const char *key, const char *value);

/* Percent-encodes `s` into `b` (unreserved characters kept). 0 or -1. */
int mg_oauth_urlencode(struct mg_buf *b, const char *s, size_t len);

/* Appends "Authorization: Basic base64(urlencode(id):urlencode(secret))"
 * (RFC 6749 §2.3.1) to `out`. 0 or -1. The caller wipes `out`. */
int mg_oauth_basic_auth(struct mg_buf *out, const char *id, const char *secret);

/* The request that checks a token at the authorization server: RFC 7662
 * introspection (POST token=…&token_type_hint=access_token with the
 * gateway's Basic credentials) when cfg->introspection_url is set, else
 * userinfo (GET with the token as Bearer). Holds copies of the token:
 * release with mg_oauth_check_request_free (which wipes them). */
struct mg_oauth_check_request {
	const char *url;
	const char *method;
	const char *headers[3];
	size_t n_headers;
	struct mg_buf body, auth;
};
int mg_oauth_check_request_init(struct mg_oauth_check_request *rq,
                                const struct mg_oauth_config *cfg, const char *tok, size_t len);

/* The fetch options of `rq` (borrowing from it): 5 s, 64 KiB answers, the
 * SSRF rule with cfg->allow_private_networks. */
struct mg_fetch_opts;
void mg_oauth_check_request_opts(const struct mg_oauth_check_request *rq,
                                 const struct mg_oauth_config *cfg, struct mg_fetch_opts *o);
void mg_oauth_check_request_free(struct mg_oauth_check_request *rq);

/* ---- validated-token cache ----------------------------------------------------------- */

/* Keyed by the token's SHA-256 (the token itself is never stored): a
 * positive entry holds an identity until `until`, a negative one remembers
 * a refusal. Fixed size with a short probe: a full neighbourhood evicts the
 * entry that expires first. */
struct mg_oauth_cache;

struct mg_oauth_cache *mg_oauth_cache_new(size_t slots /* power of two */);
void mg_oauth_cache_free(struct mg_oauth_cache *c);

enum mg_oauth_cached { MG_OAUTH_MISS, MG_OAUTH_HIT, MG_OAUTH_REFUSED };

/* Looks `hash` up at `now`: HIT with *id (a new reference), REFUSED (a
 * recent negative answer) or MISS (absent or expired). */
enum mg_oauth_cached mg_oauth_cache_get(struct mg_oauth_cache *c, const uint8_t *hash, int64_t now,
                                        struct mg_identity **id);

/* Remembers `id` (a reference is taken; NULL: a refusal) until `until`. */
void mg_oauth_cache_put(struct mg_oauth_cache *c, const uint8_t *hash, struct mg_identity *id,
                        int64_t until, int64_t now);

/* Entries currently held (expired ones included until reused). */
size_t mg_oauth_cache_count(const struct mg_oauth_cache *c);

/* ---- answers → identity --------------------------------------------------------------- */

/* Seconds a refusal is remembered. */
#define MG_OAUTH_NEGATIVE_TTL 10

/* What an authorization server said about a token. */
struct mg_oauth_verdict {
	enum mg_auth_status status; /* OK (identity), INVALID (inactive) or UNAVAILABLE */
	struct mg_identity *identity;
	int64_t cache_until; /* remember the answer until then; 0: do not */
	char reason[160];    /* for the log only */
};

/* An RFC 7662 introspection answer (HTTP status and body) at `now`:
 * active must be exactly true, exp (when present) in the future, aud (when
 * `cfg->audience` is set) one of the accepted ones. The identity is named
 * by cfg->user_id_claim, its scopes from "scope", tools from
 * scope_tool_mapping; cached until min(now + cache_duration_secs, exp). */
void mg_oauth_introspection_verdict(const struct mg_oauth_config *cfg, long http_status,
                                    const char *body, size_t len, int64_t now,
                                    struct mg_oauth_verdict *v);

/* An OpenID Connect userinfo (or GitHub /user) answer: 200 with a JSON
 * object is a valid token, 401/403 an invalid one, anything else
 * UNAVAILABLE. Scopes from a "scope" member when there is one. */
void mg_oauth_userinfo_verdict(const struct mg_oauth_config *cfg, long http_status,
                               const char *body, size_t len, int64_t now,
                               struct mg_oauth_verdict *v);

#endif
