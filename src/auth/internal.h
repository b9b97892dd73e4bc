/*
 * internal.h - what the auth providers share (src/auth only).
 */
#ifndef MG_AUTH_INTERNAL_H
#define MG_AUTH_INTERNAL_H

#include "auth/auth.h"
#include "auth/jwks.h"
#include "auth/jwt.h"

struct mg_auth_provider;

/* A pending authentication (the chain waits for a provider). */
struct mg_auth_wait {
	struct mg_auth *auth;
	struct mg_auth_wait *prev, *next; /* in the provider's waiters */
	mg_auth_done_fn done;
	void *arg;
	bool any_invalid; /* an earlier provider refused credentials */
	char *token;      /* what the waiting provider must look at again */
	size_t token_len;
	struct mg_auth_provider *provider; /* the one that answered AGAIN */
	size_t index;                      /* its place in the chain */
	bool insufficient, unavailable;    /* what earlier providers answered */
	char reason[160];                  /* the first refusal's reason */
	struct mg_jwks_waiter jw;          /* JWT: waiting for JWKS keys */
	void *lookup;                      /* OAuth: the introspection it waits for */
	struct mg_auth_request req;        /* strings cleared: only `now` is kept */
};

struct mg_auth_provider_ops {
	const char *name;
	/* Returns OK (out->identity set), DECLINED, INVALID (out->reason,
	 * out->insufficient_scope), UNAVAILABLE, or AGAIN after taking `w`
	 * (it will call mg_auth_resume(w, ...) later). */
	enum mg_auth_status (*authenticate)(struct mg_auth_provider *p,
	                                    const struct mg_auth_request *r,
	                                    struct mg_auth_outcome *out, struct mg_auth_wait *w);
	void (*cancel)(struct mg_auth_provider *p, struct mg_auth_wait *w);
	void (*free)(struct mg_auth_provider *p);
};

struct mg_auth_provider {
	const struct mg_auth_provider_ops *ops;
	struct mg_auth *auth;
};

struct mg_auth {
	int refs;
	struct event_base *base;
	const struct mg_config *cfg;
	struct mg_config *owned_cfg; /* freed with the context (reloads) */
	struct mg_fetcher *fetcher;
	struct mg_auth_provider *providers[5];
	size_t n_providers;
	char resource[512];
	struct mg_auth_stats stats;
	const struct mg_auth *previous; /* during mg_auth_renew only */
};

/* The JWKS cache of a context's JWT provider, or NULL. */
struct mg_jwks *mg_auth_jwt_jwks(const struct mg_auth_provider *p);

/* Requests a context's JWT provider answered from its token cache (0 for
 * other providers). */
uint64_t mg_auth_jwt_cache_hits(const struct mg_auth_provider *p);

/* A waiting provider finished: when it did not accept the credentials the
 * chain goes on with the next providers (which may wait again with the same
 * `w`); otherwise, or at the end, the chain completes for `w` (and frees it). */
void mg_auth_resume(struct mg_auth_wait *w, const struct mg_auth_outcome *o);

/* Providers. NULL with `err` on a configuration problem. */
struct mg_auth_provider *mg_auth_api_key_new(struct mg_auth *a, char *err, size_t err_size);
struct mg_auth_provider *mg_auth_mtls_new(struct mg_auth *a, char *err, size_t err_size);
struct mg_auth_provider *mg_auth_jwt_new(struct mg_auth *a, char *err, size_t err_size);
struct mg_auth_provider *mg_auth_oauth_new(struct mg_auth *a, char *err, size_t err_size);

/* Deep-copies a string list. */
void mg_strv_copy(struct mg_strv *dst, const struct mg_strv *src);
void mg_strv_release(struct mg_strv *v);

/* Appends a copy of s[0..len) unless already present. */
void mg_strv_add(struct mg_strv *v, const char *s, size_t len);

/* true when `s` is one of the list's strings. */
bool mg_strv_has(const struct mg_strv *v, const char *s);

/* An identity id from a claim value: a non-empty string without NUL shorter
 * than `size`, or an integer (decimal). 0, or -1 when unusable. */
int mg_claim_id(const json_t *v, char *out, size_t size);

/* Sets id->scopes from a scope claim (space-separated string or array of
 * strings; anything else: none) and, when `mapping` has entries,
 * id->allowed_tools from the mapped scopes only (no mapped scope, no tools). */
void mg_identity_grant_scopes(struct mg_identity *id, const json_t *scope,
                              const struct mg_kstrvv *mapping);

/* The token of "Authorization: Bearer <token>" (scheme case-insensitive),
 * or NULL; its length in *len. */
const char *mg_auth_bearer(const char *authorization, size_t *len);

#endif
