/*
 * oauth_client.c - clients of the authorization-server facade: redirect-URI
 * and CIMD-URL rules, registrations, metadata documents, authorization
 * request checks (see oauth_client.h).
 *
 * Pure: no I/O, time as a parameter. The rules are deliberately narrow:
 * what a loopback-or-https redirect URI is gets decided here once, with no
 * normalisation, and the match afterwards is a byte comparison, so the
 * usual tricks (prefix, case, `@` userinfo, `#` fragment, a look-alike host
 * such as 127.0.0.1.evil.example) have nothing to slip through.
 */
#include "auth/oauth_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/internal.h"
#include "auth/oauth_state.h"
#include "util/str.h"

/* ---- URLs ----------------------------------------------------------------------------- */

struct url_parts {
	const char *scheme_end; /* "://" */
	const char *host;
	size_t host_len;
	const char *path; /* from the first '/', '?' or '#' after the authority */
};

/* Splits an absolute URL; -1 when it is not scheme://authority[path]. */
static int split(const char *u, struct url_parts *p, char *err, size_t err_size)
{
	size_t n = strlen(u);
	if (n == 0 || n > MG_OAUTH_URI_MAX) {
		snprintf(err, err_size, "a URI must have 1 to %d bytes", MG_OAUTH_URI_MAX);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)u[i];
		if (c <= 0x20 || c >= 0x7F || c == '\\') {
			snprintf(err, err_size,
			         "a URI must be printable ASCII without spaces or '\\'");
			return -1;
		}
	}
	p->scheme_end = strstr(u, "://");
	if (!p->scheme_end) {
		snprintf(err, err_size, "an absolute http(s) URI is required");
		return -1;
	}
	const char *auth = p->scheme_end + 3;
	size_t alen = strcspn(auth, "/?#");
	if (memchr(auth, '@', alen)) {
		snprintf(err, err_size, "a URI must not carry userinfo ('@')");
		return -1;
	}
	if (strchr(u, '#')) {
		snprintf(err, err_size, "a URI must not have a fragment");
		return -1;
	}
	p->host = auth;
	p->host_len = alen;
	if (auth[0] == '[') {
		const char *close = memchr(auth, ']', alen);
		if (!close) {
			snprintf(err, err_size, "bad IPv6 host");
			return -1;
		}
		p->host_len = (size_t)(close - auth) + 1;
	} else {
		const char *colon = memchr(auth, ':', alen);
		if (colon)
			p->host_len = (size_t)(colon - auth);
	}
	/* a port, when present, is 1-5 digits */
	const char *after = auth + p->host_len;
	if (after < auth + alen) {
		if (*after != ':' || auth + alen - after < 2 || auth + alen - after > 6) {
			snprintf(err, err_size, "bad port");
			return -1;
		}
		for (const char *d = after + 1; d < auth + alen; d++) {
			if (*d < '0' || *d > '9') {
				snprintf(err, err_size, "bad port");
				return -1;
			}
		}
	}
	if (p->host_len == 0) {
		snprintf(err, err_size, "a URI must name a host");
		return -1;
	}
	p->path = auth + alen;
	return 0;
}

static bool host_is(const struct url_parts *p, const char *h)
{
	return p->host_len == strlen(h) && memcmp(p->host, h, p->host_len) == 0;
}

int mg_oauth_redirect_uri_check(const char *uri, char *err, size_t err_size)
{
	struct url_parts p;
	if (split(uri, &p, err, err_size) < 0)
		return -1;
	size_t slen = (size_t)(p.scheme_end - uri);
	if (slen == 5 && memcmp(uri, "https", 5) == 0)
		return 0;
	if (slen == 4 && memcmp(uri, "http", 4) == 0) {
		/* RFC 8252 §7.3: loopback only; the literal names, nothing that
		 * merely starts with them. */
		if (host_is(&p, "127.0.0.1") || host_is(&p, "[::1]") || host_is(&p, "localhost"))
			return 0;
		snprintf(err, err_size,
		         "http redirect URIs must be loopback (127.0.0.1, [::1], "
		         "localhost); use https");
		return -1;
	}
	snprintf(err, err_size,
	         "redirect URIs must use https, or http on a loopback address "
	         "(lower-case scheme)");
	return -1;
}

bool mg_oauth_redirect_uri_match(const struct mg_strv *registered, const char *uri)
{
	return uri && mg_strv_has(registered, uri);
}

int mg_oauth_cimd_url_check(const char *url, char *err, size_t err_size)
{
	struct url_parts p;
	if (split(url, &p, err, err_size) < 0)
		return -1;
	if ((size_t)(p.scheme_end - url) != 5 || memcmp(url, "https", 5) != 0) {
		snprintf(err, err_size, "a client_id URL must use https");
		return -1;
	}
	if (p.path[0] != '/' || p.path[1] == '\0') {
		snprintf(err, err_size, "a client_id URL must have a path");
		return -1;
	}
	if (strchr(p.path, '?')) {
		snprintf(err, err_size, "a client_id URL must not have a query");
		return -1;
	}
	if (strstr(p.path, "/./") || strstr(p.path, "/../") ||
	    (strlen(p.path) >= 2 && strcmp(p.path + strlen(p.path) - 2, "/.") == 0) ||
	    (strlen(p.path) >= 3 && strcmp(p.path + strlen(p.path) - 3, "/..") == 0)) {
		snprintf(err, err_size, "a client_id URL must not have dot segments");
		return -1;
	}
	return 0;
}

/* ---- clients --------------------------------------------------------------------------- */

void mg_oauth_client_free(struct mg_oauth_client *c)
{
	if (!c)
		return;
	free(c->client_id);
	free(c->name);
	mg_strv_release(&c->redirect_uris);
	free(c);
}

/* Reads the metadata every client document shares: redirect_uris and
 * client_name. 0 or -1 with `code` and `err`. */
static int read_metadata(json_t *o, struct mg_oauth_client *c, const char **code, char *err,
                         size_t err_size)
{
	json_t *ru = json_object_get(o, "redirect_uris");
	if (!json_is_array(ru) || json_array_size(ru) == 0 ||
	    json_array_size(ru) > MG_OAUTH_MAX_REDIRECTS) {
		*code = "invalid_redirect_uri";
		snprintf(err, err_size, "redirect_uris must be an array of 1 to %d URIs",
		         MG_OAUTH_MAX_REDIRECTS);
		return -1;
	}
	size_t i;
	json_t *v;
	json_array_foreach(ru, i, v)
	{
		char why[160];
		if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v) ||
		    mg_oauth_redirect_uri_check(json_string_value(v), why, sizeof why) < 0) {
			*code = "invalid_redirect_uri";
			snprintf(err, err_size, "redirect_uris[%zu]: %s", i,
			         json_is_string(v) ? why : "not a string");
			return -1;
		}
		mg_strv_add(&c->redirect_uris, json_string_value(v), json_string_length(v));
	}
	c->redirect_uris.set = true;
	json_t *name = json_object_get(o, "client_name");
	if (name && (!json_is_string(name) || json_string_length(name) > MG_OAUTH_CLIENT_NAME_MAX ||
	             !mg_utf8_valid(json_string_value(name), json_string_length(name)) ||
	             strlen(json_string_value(name)) != json_string_length(name))) {
		*code = "invalid_client_metadata";
		snprintf(err, err_size, "client_name must be a string of at most %d bytes",
		         MG_OAUTH_CLIENT_NAME_MAX);
		return -1;
	}
	c->name = mg_strdup(name ? json_string_value(name) : "");
	/* Public clients only: the facade issues no client secrets. */
	json_t *am = json_object_get(o, "token_endpoint_auth_method");
	if (am && !(json_is_string(am) && strcmp(json_string_value(am), "none") == 0)) {
		*code = "invalid_client_metadata";
		snprintf(err, err_size,
		         "token_endpoint_auth_method must be \"none\" (public "
		         "clients with PKCE)");
		return -1;
	}
	json_t *gt = json_object_get(o, "grant_types");
	json_array_foreach(gt, i, v)
	{
		const char *g = json_string_value(v);
		if (!g ||
		    (strcmp(g, "authorization_code") != 0 && strcmp(g, "refresh_token") != 0)) {
			*code = "invalid_client_metadata";
			snprintf(err, err_size,
			         "grant_types may hold authorization_code and refresh_token only");
			return -1;
		}
	}
	if (gt && !json_is_array(gt)) {
		*code = "invalid_client_metadata";
		snprintf(err, err_size, "grant_types must be an array");
		return -1;
	}
	json_t *rt = json_object_get(o, "response_types");
	json_array_foreach(rt, i, v)
	{
		if (!json_is_string(v) || strcmp(json_string_value(v), "code") != 0) {
			*code = "invalid_client_metadata";
			snprintf(err, err_size, "response_types may hold \"code\" only");
			return -1;
		}
	}
	return 0;
}

static json_t *load_object(const char *json, size_t len, char *err, size_t err_size)
{
	json_error_t je;
	if (len > MG_OAUTH_CLIENT_DOC_MAX) {
		snprintf(err, err_size, "client metadata larger than %d bytes",
		         MG_OAUTH_CLIENT_DOC_MAX);
		return NULL;
	}
	json_t *o = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
	if (!json_is_object(o)) {
		json_decref(o);
		snprintf(err, err_size, "client metadata must be a JSON object");
		return NULL;
	}
	return o;
}

struct mg_oauth_client *mg_oauth_client_register(const char *json, size_t len,
                                                 const char *client_id, int64_t now,
                                                 const char **code, char *err, size_t err_size)
{
	*code = "invalid_client_metadata";
	json_t *o = load_object(json, len, err, err_size);
	struct mg_oauth_client *c = o ? calloc(1, sizeof *c) : NULL;
	if (!c)
		goto fail;
	if (read_metadata(o, c, code, err, err_size) < 0)
		goto fail;
	c->client_id = mg_strdup(client_id);
	c->expires = now + MG_OAUTH_REGISTRATION_SECS;
	json_decref(o);
	return c;
fail:
	json_decref(o);
	mg_oauth_client_free(c);
	return NULL;
}

struct mg_oauth_client *mg_oauth_client_from_document(const char *url, const char *json, size_t len,
                                                      int64_t now, int64_t cache_secs, char *err,
                                                      size_t err_size)
{
	const char *code;
	if (mg_oauth_cimd_url_check(url, err, err_size) < 0)
		return NULL;
	json_t *o = load_object(json, len, err, err_size);
	struct mg_oauth_client *c = o ? calloc(1, sizeof *c) : NULL;
	if (!c)
		goto fail;
	json_t *id = json_object_get(o, "client_id");
	if (!json_is_string(id) || strcmp(json_string_value(id), url) != 0 ||
	    json_string_length(id) != strlen(url)) {
		snprintf(err, err_size, "the document's client_id is not its own URL");
		goto fail;
	}
	if (read_metadata(o, c, &code, err, err_size) < 0)
		goto fail;
	c->client_id = mg_strdup(url);
	c->cimd = true;
	c->expires = now + cache_secs;
	json_decref(o);
	return c;
fail:
	json_decref(o);
	mg_oauth_client_free(c);
	return NULL;
}

json_t *mg_oauth_client_registration_json(const struct mg_oauth_client *c, int64_t now)
{
	json_t *uris = json_array();
	for (size_t i = 0; i < c->redirect_uris.n; i++)
		json_array_append_new(uris, json_string(c->redirect_uris.v[i]));
	return json_pack("{s:s,s:I,s:I,s:o,s:s,s:[s,s],s:[s],s:s}", "client_id", c->client_id,
	                 "client_id_issued_at", (json_int_t)now, "client_secret_expires_at",
	                 (json_int_t)0, "redirect_uris", uris, "token_endpoint_auth_method", "none",
	                 "grant_types", "authorization_code", "refresh_token", "response_types",
	                 "code", "client_name", c->name ? c->name : "");
}

/* ---- authorization requests ----------------------------------------------------------- */

static bool b64url43(const char *s)
{
	if (!s || strlen(s) != MG_OAUTH_CHALLENGE_LEN)
		return false;
	for (const char *p = s; *p; p++) {
		char c = *p;
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_'))
			return false;
	}
	return true;
}

int mg_oauth_authorize_check(const struct mg_oauth_form *f, const struct mg_oauth_client *c,
                             const char *resource, struct mg_oauth_authz_request *out,
                             bool *redirectable, const char **code, char *err, size_t err_size)
{
	memset(out, 0, sizeof *out);
	*redirectable = false;
	*code = "invalid_request";
	out->client_id = mg_oauth_form_get(f, "client_id");
	out->redirect_uri = mg_oauth_form_get(f, "redirect_uri");
	if (f->duplicate) {
		snprintf(err, err_size, "a parameter appears more than once");
		return -1;
	}
	if (!out->client_id || !c || strcmp(out->client_id, c->client_id) != 0) {
		*code = "invalid_client";
		snprintf(err, err_size, "unknown client_id");
		return -1;
	}
	if (!out->redirect_uri ||
	    !mg_oauth_redirect_uri_match(&c->redirect_uris, out->redirect_uri)) {
		snprintf(err, err_size,
		         "redirect_uri is not one registered for this client "
		         "(exact match)");
		return -1;
	}
	/* From here on the client can be told through its redirect URI. */
	*redirectable = true;
	out->state = mg_oauth_form_get(f, "state");
	out->scope = mg_oauth_form_get(f, "scope");
	const char *rt = mg_oauth_form_get(f, "response_type");
	if (!rt || strcmp(rt, "code") != 0) {
		*code = "unsupported_response_type";
		snprintf(err, err_size, "response_type must be \"code\"");
		return -1;
	}
	const char *method = mg_oauth_form_get(f, "code_challenge_method");
	out->code_challenge = mg_oauth_form_get(f, "code_challenge");
	if (!out->code_challenge) {
		snprintf(err, err_size, "PKCE is required: code_challenge is missing");
		return -1;
	}
	if (!method || strcmp(method, "S256") != 0) {
		snprintf(err, err_size, "code_challenge_method must be S256");
		return -1;
	}
	if (!b64url43(out->code_challenge)) {
		snprintf(err, err_size, "code_challenge must be 43 base64url characters");
		return -1;
	}
	out->resource = mg_oauth_form_get(f, "resource");
	if (out->resource && strcmp(out->resource, resource) != 0) {
		*code = "invalid_target";
		snprintf(err, err_size, "resource is not this gateway (%s)", resource);
		return -1;
	}
	if (!out->resource)
		out->resource = resource;
	return 0;
}
