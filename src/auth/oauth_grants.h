/*
 * oauth_grants.h - what the authorization-server facade has issued (pure,
 * time as a parameter; used by the /token endpoint): authorization
 * codes (single-use, 60 s) and refresh-token families (rotation; a rotated
 * token presented again revokes the whole family, RFC 9700 §4.14.2).
 *
 * Codes and refresh tokens are random (256 bits) and stored only as their
 * SHA-256. Every grant belongs to a family; the access tokens issued for it
 * name the family (`sid`), so revoking a family also ends its access tokens
 * at the next check (mg_oauth_family_active). A code presented a second
 * time revokes the family it created.
 */
#ifndef MG_AUTH_OAUTH_GRANTS_H
#define MG_AUTH_OAUTH_GRANTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MG_OAUTH_CODE_SECS    60
#define MG_OAUTH_TOKEN_LEN    43 /* base64url of 32 random bytes */
#define MG_OAUTH_PREV_REFRESH 8  /* rotated tokens remembered per family */

/* What a code or refresh token stands for. */
struct mg_oauth_grant {
	char client_id[513];
	char redirect_uri[513];
	char code_challenge[44];
	char resource[513];
	char subject[256]; /* the user, as the upstream provider named them */
	char scope[512];
};

struct mg_oauth_grants;

/* A store for at most `max_codes` live codes and `max_families` families;
 * families live `family_secs` from their creation. NULL when out of memory. */
struct mg_oauth_grants *mg_oauth_grants_new(size_t max_codes, size_t max_families,
                                            int64_t family_secs);
void mg_oauth_grants_free(struct mg_oauth_grants *g);

/* Issues a code for `gr` at `now` into `code` (43 characters + NUL).
 * 0, or -1 when the store is full of live codes (or no randomness). */
int mg_oauth_code_issue(struct mg_oauth_grants *g, const struct mg_oauth_grant *gr, int64_t now,
                        char code[MG_OAUTH_TOKEN_LEN + 1]);

enum mg_oauth_redeem {
	MG_OAUTH_REDEEM_OK,
	MG_OAUTH_REDEEM_UNKNOWN,  /* never issued, or forgotten */
	MG_OAUTH_REDEEM_EXPIRED,  /* too late */
	MG_OAUTH_REDEEM_MISMATCH, /* another client, redirect_uri or a wrong PKCE verifier */
	MG_OAUTH_REDEEM_REPLAY,   /* already used: what it issued is revoked */
	MG_OAUTH_REDEEM_REVOKED,  /* its family was revoked */
	MG_OAUTH_REDEEM_FULL,     /* no room for a new family */
};

/* Redeems a code at `now` for `client_id` with `redirect_uri` and the PKCE
 * `verifier`. The code is spent whatever the outcome (a failed attempt
 * cannot be retried). OK: *out is the grant and *family a new family id
 * (for the access token's `sid` and the first refresh token). A second
 * redemption revokes that family: REPLAY. */
enum mg_oauth_redeem mg_oauth_code_redeem(struct mg_oauth_grants *g, const char *code,
                                          const char *client_id, const char *redirect_uri,
                                          const char *verifier, int64_t now,
                                          struct mg_oauth_grant *out, uint64_t *family);

/* Issues the next refresh token of `family` into `token` (the previous one
 * becomes a rotated token). 0, or -1 when the family is unknown or
 * revoked. */
int mg_oauth_refresh_issue(struct mg_oauth_grants *g, uint64_t family, int64_t now,
                           char token[MG_OAUTH_TOKEN_LEN + 1]);

/* Redeems a refresh token at `now` for `client_id`: OK with *out and
 * *family (the caller then issues the next token with
 * mg_oauth_refresh_issue); REPLAY when it is a rotated one (the family is
 * revoked); MISMATCH for another client; EXPIRED; REVOKED; UNKNOWN. */
enum mg_oauth_redeem mg_oauth_refresh_redeem(struct mg_oauth_grants *g, const char *token,
                                             const char *client_id, int64_t now,
                                             struct mg_oauth_grant *out, uint64_t *family);

/* true while `family` exists, is not revoked and has not expired. */
bool mg_oauth_family_active(const struct mg_oauth_grants *g, uint64_t family, int64_t now);

/* Revokes a family (its refresh tokens and, through `sid`, its access tokens). */
void mg_oauth_family_revoke(struct mg_oauth_grants *g, uint64_t family);

#endif
