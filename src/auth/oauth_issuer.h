/*
 * oauth_issuer.h - the gateway as an authorization server for MCP clients
 * ([auth.oauth] authorization_server = true): what it holds across
 * requests - its signing key, registered and CIMD clients, pending
 * authorizations, codes and refresh-token families - and the check of its
 * own access tokens by the auth chain.
 *
 * One issuer per process: a SIGHUP reload hands it to the new auth context
 * (keys, clients and grants survive), like the JWKS cache. The HTTP
 * endpoints are src/gateway/oauth.c; the pure rules are oauth_client.c,
 * oauth_grants.c, oauth_signer.c, oauth_state.c.
 */
#ifndef MG_AUTH_OAUTH_ISSUER_H
#define MG_AUTH_OAUTH_ISSUER_H

#include <stdbool.h>
#include <stdint.h>

#include "auth/auth.h"
#include "auth/oauth_client.h"
#include "auth/oauth_grants.h"
#include "auth/oauth_signer.h"
#include "auth/oauth_state.h"

#define MG_OAUTH_ACCESS_SECS  300   /* lifetime of the gateway's access tokens */
#define MG_OAUTH_FAMILY_SECS  86400 /* refresh tokens: a login lasts a day */
#define MG_OAUTH_MAX_CLIENTS  1024  /* registered + cached CIMD clients */
#define MG_OAUTH_MAX_PENDING  1024  /* authorizations between /authorize and the callback */
#define MG_OAUTH_PENDING_SECS 600
#define MG_OAUTH_CIMD_SECS    300 /* a metadata document is cached this long */

/* An authorization between GET /authorize and the provider's callback. */
struct mg_oauth_pending {
	char id[MG_OAUTH_TOKEN_LEN + 1]; /* random; travels in the state's ctx */
	int64_t expires;
	struct mg_oauth_grant grant; /* client, redirect, challenge, resource, scope */
	char client_state[513];      /* the client's own state, returned as is */
	bool approved;               /* consent given: the provider login may start */
};

struct mg_oauth_issuer;

/* A new issuer; NULL with `err`. */
struct mg_oauth_issuer *mg_oauth_issuer_new(char *err, size_t err_size);
struct mg_oauth_issuer *mg_oauth_issuer_ref(struct mg_oauth_issuer *is);
void mg_oauth_issuer_unref(struct mg_oauth_issuer *is);

/* The issuer of the auth context's OAuth provider, or NULL when the facade
 * is off (borrowed). */
struct mg_oauth_issuer *mg_auth_oauth_issuer(const struct mg_auth *a);

/* The issuer identifier of a gateway whose resource URL is `resource`: its
 * origin (scheme://host[:port]). */
void mg_oauth_issuer_url(const char *resource, char *out, size_t size);

/* The signing key (the one that signs new tokens). */
struct mg_oauth_signer *mg_oauth_issuer_signer(struct mg_oauth_issuer *is);

/* Key rotation: makes the Ed25519 key in `key_file` (NULL: keep the current
 * one) the signing key and `previous_file` (NULL: none) an accepted,
 * published, never-signing one. A signing key replaced here stays accepted
 * and published until the tokens it signed have expired (at most
 * MG_OAUTH_ACCESS_SECS after `now`). Files are read now (blocking: config
 * load and reload only). Both are loaded before anything changes: -1 with
 * `err` leaves the issuer as it was. 0 on success. */
int mg_oauth_issuer_set_keys(struct mg_oauth_issuer *is, const char *key_file,
                             const char *previous_file, int64_t now, char *err, size_t err_size);

/* {"keys":[…]}: the signing key first, then every other key accepted at
 * `now` (new reference). */
json_t *mg_oauth_issuer_jwks(struct mg_oauth_issuer *is, int64_t now);

/* Whether `kid` names one of the keys accepted at `now` (false for a NULL issuer). */
bool mg_oauth_issuer_has_kid(const struct mg_oauth_issuer *is, const char *kid, int64_t now);

struct mg_oauth_grants *mg_oauth_issuer_grants(struct mg_oauth_issuer *is);

/* Clients: a registered one, or a CIMD one still cached at `now`
 * (borrowed until the next add). */
const struct mg_oauth_client *mg_oauth_issuer_client(struct mg_oauth_issuer *is,
                                                     const char *client_id, int64_t now);

/* Adds (takes) a client; replaces a cached document with the same id; when
 * full, reuses an expired client's slot, else the oldest client's. 0. */
int mg_oauth_issuer_add_client(struct mg_oauth_issuer *is, struct mg_oauth_client *c, int64_t now);

/* A new pending authorization (copied); its id in p->id. When full the
 * oldest one makes room. NULL only without randomness. */
struct mg_oauth_pending *mg_oauth_issuer_pend(struct mg_oauth_issuer *is,
                                              const struct mg_oauth_pending *p, int64_t now);

/* The pending authorization `id` at `now`, or NULL. */
struct mg_oauth_pending *mg_oauth_issuer_pending(struct mg_oauth_issuer *is, const char *id,
                                                 int64_t now);

/* Forgets a pending authorization (used or abandoned). */
void mg_oauth_issuer_forget(struct mg_oauth_issuer *is, struct mg_oauth_pending *p);

/* Signs an access token for `gr` in family `family`: iss = `issuer`, aud =
 * the grant's resource, sub, scope, client_id, sid = family, iat/exp from
 * `now`. malloc'd or NULL. */
char *mg_oauth_issuer_access_token(struct mg_oauth_issuer *is, const char *issuer,
                                   const struct mg_oauth_grant *gr, uint64_t family, int64_t now);

/* Checks a bearer token as one of this issuer's: DECLINED when it is not
 * signed by this issuer's key (someone else's token), INVALID when it is
 * but expired, for another audience (`resource`) or issuer, or its family
 * was revoked; OK with an identity ("oauth:<sub>", scopes and tools from
 * `cfg`). */
enum mg_auth_status mg_oauth_issuer_verify(struct mg_oauth_issuer *is,
                                           const struct mg_oauth_config *cfg, const char *issuer,
                                           const char *resource, const char *tok, size_t len,
                                           int64_t now, struct mg_identity **id, char *reason,
                                           size_t reason_size);

#endif
