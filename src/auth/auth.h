/*
 * auth.h - who is calling: the identity, the provider chain, and what an
 * authentication failure must look like on the wire (RFC 6750, RFC 9728).
 *
 * ACCESS phase of the pipeline. Providers (API keys, JWT, mTLS) are an ops
 * table tried in a fixed, documented order - mTLS, API key, JWT - and the
 * first success wins. A provider answers OK (an identity), DECLINED (these
 * credentials are not for me), INVALID (mine, and wrong), UNAVAILABLE (it
 * cannot decide now, e.g. the IdP is unreachable and no keys are cached)
 * or AGAIN (it will call back, e.g. after fetching a JWKS). Failures are
 * aggregated into one answer that never says which provider refused what.
 *
 * An auth context (`struct mg_auth`) is built from a configuration and is
 * reference-counted: a SIGHUP reload swaps in a new one while requests in
 * flight finish with the one they started with.
 */
#ifndef MG_AUTH_AUTH_H
#define MG_AUTH_AUTH_H

#include <event2/event.h>
#include <jansson.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config/config.h"

struct mg_fetcher;

/* An authenticated caller. Reference-counted: sessions keep theirs. */
struct mg_identity {
	int refs;
	char *id;                     /* stable id, e.g. "alice" (user_id_claim, key id, cert CN) */
	char *key;                    /* provider-qualified id for binding: "api_key:alice" */
	const char *provider;         /* "api_key", "jwt", "mtls", "anonymous" */
	char *display;                /* optional human name */
	struct mg_strv allowed_tools; /* .set false: everything */
	struct mg_strv allowed_resources;
	struct mg_strv allowed_prompts;
	double rate_limit; /* requests/s for this identity; 0 = the global default */
	struct mg_strv scopes;
	json_t *claims;  /* JWT claims or certificate details (owned), or NULL */
	int64_t expires; /* Unix seconds the credential expires; 0 = never */
};

/* A new identity with one reference; `provider` is a static string. */
struct mg_identity *mg_identity_new(const char *provider, const char *id);

struct mg_identity *mg_identity_ref(struct mg_identity *id);
void mg_identity_unref(struct mg_identity *id);

/* The shared anonymous identity (no providers configured; loopback only). */
struct mg_identity *mg_identity_anonymous(void);

/* What providers see of a request (no HTTP types). All strings may be NULL. */
struct mg_auth_request {
	const char *authorization; /* Authorization header */
	const char *api_key;       /* X-API-Key header */
	const struct sockaddr *peer;
	SSL *ssl; /* the TLS session, when TLS */
	/* X-Client-Cert-* set by a TLS-terminating proxy (trusted only from
	 * auth.mtls.trusted_proxies) */
	const char *fwd_cn, *fwd_san_dns, *fwd_san_email, *fwd_verified;
	int64_t now; /* Unix seconds */
};

enum mg_auth_status {
	MG_AUTH_OK,
	MG_AUTH_DECLINED,
	MG_AUTH_INVALID,
	MG_AUTH_UNAVAILABLE,
	MG_AUTH_AGAIN,
};

/* The outcome of the whole chain. */
struct mg_auth_outcome {
	enum mg_auth_status
	    status; /* OK, INVALID (bad credentials), DECLINED (none), UNAVAILABLE */
	struct mg_identity *identity; /* OK: a reference the caller owns */
	bool insufficient_scope;      /* valid token, required scope missing (403) */
	char reason[160];             /* for the log only: never sent, never a credential */
};

typedef void (*mg_auth_done_fn)(const struct mg_auth_outcome *o, void *arg);

struct mg_auth;
struct mg_auth_wait;

/* Builds the auth context of `cfg` (borrowed; must outlive the context).
 * `fetcher` is used for JWKS. Returns NULL with `err`. */
struct mg_auth *mg_auth_new(struct event_base *base, const struct mg_config *cfg,
                            struct mg_fetcher *fetcher, char *err, size_t err_size);

/* Like mg_auth_new for a reload: state worth keeping is taken over from
 * `previous` (the JWKS keys, when jwks_url did not change), so a reload
 * while the IdP is down does not lose them. */
struct mg_auth *mg_auth_renew(const struct mg_auth *previous, const struct mg_config *cfg,
                              char *err, size_t err_size);

/* The context takes ownership of `cfg` (freed with the context): for a
 * configuration loaded by a reload. */
void mg_auth_own_config(struct mg_auth *a, struct mg_config *cfg);

struct mg_auth *mg_auth_ref(struct mg_auth *a);
void mg_auth_unref(struct mg_auth *a);

/* true when at least one provider is configured. */
bool mg_auth_enabled(const struct mg_auth *a);

/* Runs the chain. Either fills `out` and returns true (done), or returns
 * false and calls `done` later (then *wait lets the caller cancel). */
bool mg_auth_authenticate(struct mg_auth *a, const struct mg_auth_request *r,
                          struct mg_auth_outcome *out, mg_auth_done_fn done, void *arg,
                          struct mg_auth_wait **wait);

/* Cancels a pending authentication; `done` will not be called. */
void mg_auth_cancel(struct mg_auth_wait *w);

/* The WWW-Authenticate value for a refusal: Bearer with resource_metadata,
 * and error="invalid_token" / "insufficient_scope" / "invalid_request"
 * when given (NULL: no error, i.e. no credentials were presented). Written
 * into `out`. */
void mg_auth_challenge(const struct mg_auth *a, const char *error, char *out, size_t size);

/* As mg_auth_challenge, with an explicit scope="..." (the scopes that would
 * grant what was refused). */
void mg_auth_challenge_scope(const struct mg_auth *a, const char *error, const char *scope,
                             char *out, size_t size);

/* The configuration the context was built from. */
const struct mg_config *mg_auth_config(const struct mg_auth *a);

/* RFC 9728 protected resource metadata, or NULL when neither JWT nor OAuth
 * is configured (new reference). */
json_t *mg_auth_resource_metadata(const struct mg_auth *a);

/* The configured public URL of the resource (server.public_url or derived). */
const char *mg_auth_resource_url(const struct mg_auth *a);

/* Counters of this context, for metrics (a reload starts new ones, except the
 * JWKS's, which carry over with its keys). */
struct mg_auth_stats {
	uint64_t ok, invalid, missing, unavailable, jwt_cache_hits, jwks_fetches, jwks_errors;
};
void mg_auth_stats(const struct mg_auth *a, struct mg_auth_stats *out);

/* true when `addr` is inside one of the CIDR blocks (e.g. trusted_proxies). */
bool mg_cidr_match(const struct mg_strv *cidrs, const struct sockaddr *addr);

/* TLS server context from [server.tls] (TLS 1.2+, client certificates
 * required and verified against client_ca_path when set). NULL with `err`. */
SSL_CTX *mg_tls_server_ctx(const struct mg_tls_config *tls, char *err, size_t err_size);

#endif
