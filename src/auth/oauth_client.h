/*
 * oauth_client.h - the pure rules of the authorization-server facade about
 * clients (used by src/gateway/oauth.c): which redirect URIs a client may
 * register, how a requested redirect URI is matched, what a Client ID
 * Metadata Document URL and document must look like, RFC 7591 registration
 * requests, and the checks of an authorization request.
 *
 * DESIGN.md §8: redirect URIs match exactly (scheme case, userinfo `@`,
 * fragments and look-alike hosts refused); PKCE S256 only; a CIMD client_id
 * must equal the document's URL.
 */
#ifndef MG_AUTH_OAUTH_CLIENT_H
#define MG_AUTH_OAUTH_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/oauth.h"
#include "config/config.h"

#define MG_OAUTH_URI_MAX           512
#define MG_OAUTH_MAX_REDIRECTS     8
#define MG_OAUTH_CLIENT_NAME_MAX   128
#define MG_OAUTH_CLIENT_DOC_MAX    (16 * 1024)
#define MG_OAUTH_REGISTRATION_SECS (30 * 24 * 3600) /* a registration lives this long */

/* Whether `uri` may be registered as a redirect URI: an absolute https URL,
 * or http on a loopback host (127.0.0.1, [::1], localhost); lower-case
 * scheme; a host; no userinfo, no fragment, no whitespace or control
 * characters, at most MG_OAUTH_URI_MAX bytes. Everything else (javascript:,
 * data:, custom schemes, http on other hosts) is refused. 0, or -1 with
 * `err`. */
int mg_oauth_redirect_uri_check(const char *uri, char *err, size_t err_size);

/* true when `uri` is byte-for-byte one of `registered` (no normalisation:
 * case, trailing slashes, ports, encodings all count). */
bool mg_oauth_redirect_uri_match(const struct mg_strv *registered, const char *uri);

/* Whether `url` may be a Client ID Metadata Document URL: https, a host, a
 * path other than "/", no userinfo, fragment, query, dot segments or
 * control characters, at most MG_OAUTH_URI_MAX bytes. 0 or -1 with `err`. */
int mg_oauth_cimd_url_check(const char *url, char *err, size_t err_size);

/* A client the facade knows. */
struct mg_oauth_client {
	char *client_id;
	char *name;
	struct mg_strv redirect_uris;
	bool cimd;       /* identified by a metadata document URL */
	int64_t expires; /* Unix seconds (registrations expire; CIMD: cache end) */
};

void mg_oauth_client_free(struct mg_oauth_client *c);

/* An RFC 7591 registration request (JSON body) received at `now`: public
 * clients only (token_endpoint_auth_method absent or "none"), grant_types
 * within authorization_code and refresh_token, response_types "code",
 * 1..MG_OAUTH_MAX_REDIRECTS valid redirect URIs. `client_id` is the id the
 * caller chose (random). NULL with an RFC 7591 error code in `code`
 * ("invalid_redirect_uri" or "invalid_client_metadata") and `err`. */
struct mg_oauth_client *mg_oauth_client_register(const char *json, size_t len,
                                                 const char *client_id, int64_t now,
                                                 const char **code, char *err, size_t err_size);

/* A Client ID Metadata Document fetched from `url` at `now`: a JSON
 * object whose client_id equals `url` exactly, with redirect_uris as for a
 * registration; cached until now + `cache_secs`. NULL with `err`. */
struct mg_oauth_client *mg_oauth_client_from_document(const char *url, const char *json, size_t len,
                                                      int64_t now, int64_t cache_secs, char *err,
                                                      size_t err_size);

/* The RFC 7591 answer for a registered client (new reference). */
json_t *mg_oauth_client_registration_json(const struct mg_oauth_client *c, int64_t now);

/* ---- authorization requests ---------------------------------------------------------- */

/* The checked parameters of a GET /authorize (borrowed from the form). */
struct mg_oauth_authz_request {
	const char *client_id;
	const char *redirect_uri;
	const char *state; /* the client's, may be NULL */
	const char *code_challenge;
	const char *scope; /* may be NULL */
	const char *resource;
};

/* Checks an authorization request against its client and this gateway's
 * resource URL. Order matters (RFC 6749 §4.1.2.1): while client_id or
 * redirect_uri is wrong the error must not be sent to the redirect URI, so
 * *redirectable says whether it may be. Refused: duplicated parameters,
 * response_type other than "code", a missing code_challenge or a method
 * other than S256 ("plain" included), a challenge that is not 43 base64url
 * characters, a resource other than `resource` (RFC 8707; absent is allowed
 * and means this gateway). 0, or -1 with the OAuth error code in `code` and
 * a description in `err`. */
int mg_oauth_authorize_check(const struct mg_oauth_form *f, const struct mg_oauth_client *c,
                             const char *resource, struct mg_oauth_authz_request *out,
                             bool *redirectable, const char **code, char *err, size_t err_size);

#endif
