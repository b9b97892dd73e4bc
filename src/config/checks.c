/*
 * checks.c - rules that involve more than one key (see checks.h).
 *
 * Each check receives the decoded struct and the section's tree node so it
 * can point at the exact key in its message. Checks report and continue.
 */
#include "config/checks.h"

#include <arpa/inet.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/decode.h"
#include "util/crypto.h"
#include "util/jpath.h"
#include "util/str.h"

#define JWT_MIN_SECRET 32

static const struct mg_cnode *key_node(struct mg_decode *dc, const struct mg_cnode *table,
                                       const char *key)
{
	const struct mg_cnode *n = table ? mg_cnode_getz(dc->doc, table, key) : NULL;
	return n ? n : table;
}

/* The node that supplied a secret: <key>, <key>_env or <key>_file. */
static const struct mg_cnode *secret_node(struct mg_decode *dc, const struct mg_cnode *table,
                                          const char *key)
{
	char k[96];
	const struct mg_cnode *n = table ? mg_cnode_getz(dc->doc, table, key) : NULL;
	snprintf(k, sizeof k, "%s_env", key);
	if (!n && table)
		n = mg_cnode_getz(dc->doc, table, k);
	snprintf(k, sizeof k, "%s_file", key);
	if (!n && table)
		n = mg_cnode_getz(dc->doc, table, k);
	return n ? n : table;
}

/* The i-th item of the array `key` in `table`, else the best node there is. */
static const struct mg_cnode *item_node(struct mg_decode *dc, const struct mg_cnode *table,
                                        const char *key, size_t i)
{
	const struct mg_cnode *arr = key_node(dc, table, key);
	if (!arr || arr->type != MG_CNODE_ARRAY)
		return arr;
	const struct mg_cnode *c = arr->first;
	for (size_t k = 0; c && k < i; k++)
		c = c->next;
	return c ? c : arr;
}

static char *kpath(const char *path, const char *key)
{
	return mg_decode_join(path, key);
}

/* A key secret (HMAC, AEAD key material) of at least JWT_MIN_SECRET bytes. */
static void check_secret_len(struct mg_decode *dc, const struct mg_cnode *node, const char *path,
                             const char *key, const char *value)
{
	if (!value || strlen(value) >= JWT_MIN_SECRET)
		return;
	char *p = kpath(path, key);
	mg_schema_error(dc, secret_node(dc, node, key), p,
	                "expected a secret of at least %d bytes, found %zu bytes", JWT_MIN_SECRET,
	                strlen(value));
	free(p);
}

static void require(struct mg_decode *dc, const void *value, const struct mg_cnode *node,
                    const char *path, const char *key, const char *why)
{
	if (value)
		return;
	char *p = kpath(path, key);
	mg_schema_error(dc, node, p, "missing required key \"%s\" %s", key, why);
	free(p);
}

static void check_readable(struct mg_decode *dc, const char *file, const struct mg_cnode *table,
                           const char *path, const char *key)
{
	if (!file || access(file, R_OK) == 0)
		return;
	char *p = kpath(path, key);
	mg_schema_error(dc, key_node(dc, table, key), p, "cannot read file \"%s\"", file);
	free(p);
}

bool mg_check_cidr_ok(const char *s)
{
	char addr[64];
	const char *slash = strchr(s, '/');
	size_t len = slash ? (size_t)(slash - s) : strlen(s);
	if (len == 0 || len >= sizeof addr)
		return false;
	memcpy(addr, s, len);
	addr[len] = '\0';
	unsigned char buf[16];
	int max_bits;
	if (inet_pton(AF_INET, addr, buf) == 1)
		max_bits = 32;
	else if (inet_pton(AF_INET6, addr, buf) == 1)
		max_bits = 128;
	else
		return false;
	if (!slash)
		return true;
	int64_t bits;
	return slash[1] >= '0' && slash[1] <= '9' &&
	       mg_parse_i64(slash + 1, 0, max_bits, &bits) == 0;
}

bool mg_host_is_loopback(const char *host)
{
	if (!host)
		return false;
	if (strcmp(host, "localhost") == 0 || strcmp(host, "::1") == 0 ||
	    strcmp(host, "[::1]") == 0)
		return true;
	struct in_addr a;
	if (inet_pton(AF_INET, host, &a) == 1)
		return (ntohl(a.s_addr) >> 24) == 127;
	return false;
}

static bool host_ok(const char *h)
{
	unsigned char buf[16];
	if (inet_pton(AF_INET, h, buf) == 1 || inet_pton(AF_INET6, h, buf) == 1)
		return true;
	size_t n = strlen(h);
	if (n == 0 || n > 253)
		return false;
	for (const char *p = h; *p; p++) {
		char c = *p;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '.'))
			return false;
	}
	return h[0] != '-' && h[0] != '.';
}

/* An Origin is scheme "://" host [":" port], nothing more. */
static bool origin_ok(const char *o)
{
	const char *why;
	if (!mg_decode_url_ok(o, &why))
		return false;
	const char *rest = strstr(o, "://") + 3;
	return strcspn(rest, "/?#") == strlen(rest);
}

void mg_check_tls(struct mg_decode *dc, void *obj, const struct mg_cnode *node, const char *path)
{
	struct mg_tls_config *t = obj;
	if (!t->enabled)
		return;
	require(dc, t->cert_path, node, path, "cert_path", "when TLS is enabled");
	require(dc, t->key_path, node, path, "key_path", "when TLS is enabled");
	check_readable(dc, t->cert_path, node, path, "cert_path");
	check_readable(dc, t->key_path, node, path, "key_path");
	check_readable(dc, t->client_ca_path, node, path, "client_ca_path");
}

void mg_check_server(struct mg_decode *dc, void *obj, const struct mg_cnode *node, const char *path)
{
	struct mg_server_config *s = obj;
	if (s->host && !host_ok(s->host)) {
		char *p = kpath(path, "host");
		mg_schema_error(dc, key_node(dc, node, "host"), p,
		                "expected an IP address or host name, found \"%s\"", s->host);
		free(p);
	}
	for (size_t i = 0; i < s->allowed_origins.n; i++) {
		if (origin_ok(s->allowed_origins.v[i]))
			continue;
		char p[128];
		snprintf(p, sizeof p, "%s.allowed_origins[%zu]", path, i);
		mg_schema_error(
		    dc, item_node(dc, node, "allowed_origins", i), p,
		    "expected an origin like \"https://app.example.com\" (scheme, host, "
		    "optional port, no path), found \"%s\"",
		    s->allowed_origins.v[i]);
	}
	if (s->public_url && s->public_url[strlen(s->public_url) - 1] == '/') {
		char *p = kpath(path, "public_url");
		mg_schema_warning(dc, key_node(dc, node, "public_url"), p,
		                  "trailing '/' is ignored");
		s->public_url[strlen(s->public_url) - 1] = '\0';
		free(p);
	}
	/* Every endpoint path answers one thing. */
	static const char *const reserved[] = { "/health", "/live", "/ready", NULL };
	const char *names[3] = { "mcp_path", "sse_path", "messages_path" };
	const char *vals[3] = { s->mcp_path, s->legacy_sse ? s->sse_path : NULL,
		                s->legacy_sse ? s->messages_path : NULL };
	for (int i = 0; i < 3; i++) {
		if (!vals[i])
			continue;
		const char *clash = NULL;
		for (int j = 0; j < i; j++)
			if (vals[j] && strcmp(vals[i], vals[j]) == 0)
				clash = names[j];
		for (int j = 0; reserved[j] && !clash; j++)
			if (strcmp(vals[i], reserved[j]) == 0)
				clash = reserved[j];
		if (!clash && strncmp(vals[i], "/.well-known/", 13) == 0)
			clash = "/.well-known/";
		if (clash) {
			char *p = kpath(path, names[i]);
			mg_schema_error(dc, key_node(dc, node, names[i]), p,
			                "\"%s\" is already taken by %s", vals[i], clash);
			free(p);
		}
	}
}

void mg_check_auth(struct mg_decode *dc, void *obj, const struct mg_cnode *node, const char *path)
{
	struct mg_auth_config *a = obj;
	const struct mg_cnode *keys = node ? mg_cnode_getz(dc->doc, node, "api_keys") : NULL;
	const struct mg_cnode *item = keys && keys->type == MG_CNODE_ARRAY ? keys->first : NULL;
	for (size_t i = 0; i < a->n_api_keys; i++, item = item ? item->next : NULL) {
		struct mg_api_key_config *k = &a->api_keys[i];
		char p[96];
		snprintf(p, sizeof p, "%s.api_keys[%zu].key_hash", path, i);
		if (k->key_hash) {
			uint8_t raw[64];
			long n =
			    mg_base64_decode(k->key_hash, strlen(k->key_hash), raw, sizeof raw);
			if (n != MG_SHA256_LEN)
				mg_schema_error(
				    dc, key_node(dc, item, "key_hash"), p,
				    "expected the base64 SHA-256 of a key (44 characters, "
				    "from `mcp-guard hash-key`), found \"%.60s\"",
				    k->key_hash);
		}
		const struct mg_cnode *prev =
		    keys && keys->type == MG_CNODE_ARRAY ? keys->first : NULL;
		for (size_t j = 0; j < i; j++, prev = prev ? prev->next : NULL) {
			struct mg_api_key_config *o = &a->api_keys[j];
			if (k->id && o->id && strcmp(k->id, o->id) == 0) {
				snprintf(p, sizeof p, "%s.api_keys[%zu].id", path, i);
				const struct mg_cnode *first = key_node(dc, prev, "id");
				mg_schema_error(dc, key_node(dc, item, "id"), p,
				                "duplicate API key id \"%s\" (first at line %u)",
				                k->id, first ? first->loc.line : 0);
			}
			if (k->key_hash && o->key_hash && strcmp(k->key_hash, o->key_hash) == 0) {
				snprintf(p, sizeof p, "%s.api_keys[%zu].key_hash", path, i);
				mg_schema_error(dc, key_node(dc, item, "key_hash"), p,
				                "the same key hash is already used by \"%s\"",
				                o->id ? o->id : "?");
			}
		}
	}
}

static bool is_hmac(const char *alg)
{
	return alg[0] == 'H' && alg[1] == 'S';
}

static void set_strv(struct mg_strv *v, const char *const *items)
{
	size_t n = 0;
	while (items[n])
		n++;
	v->v = calloc(n, sizeof(char *));
	if (!v->v)
		return;
	for (size_t i = 0; i < n; i++)
		v->v[i] = mg_strdup(items[i]);
	v->n = n;
	v->set = true;
}

void mg_check_jwt(struct mg_decode *dc, void *obj, const struct mg_cnode *node, const char *path)
{
	struct mg_jwt_config *j = obj;
	if (!j->present)
		return;
	bool simple = j->mode == MG_JWT_SIMPLE;
	if (simple) {
		require(dc, j->secret, node, path, "secret",
		        "(or secret_env / secret_file) when mode = \"simple\"");
		check_secret_len(dc, node, path, "secret", j->secret);
		if (j->jwks_url) {
			char *p = kpath(path, "jwks_url");
			mg_schema_error(dc, key_node(dc, node, "jwks_url"), p,
			                "jwks_url is only used with mode = \"jwks\"");
			free(p);
		}
	} else {
		require(dc, j->jwks_url, node, path, "jwks_url", "when mode = \"jwks\"");
		if (j->secret) {
			char *p = kpath(path, "secret");
			mg_schema_error(dc, secret_node(dc, node, "secret"), p,
			                "a secret is only used with mode = \"simple\"; mixing HMAC "
			                "and public keys enables algorithm confusion");
			free(p);
		}
	}
	if (!j->algorithms.set) {
		static const char *const hs[] = { "HS256", NULL };
		static const char *const pk[] = { "RS256", "ES256", "EdDSA", NULL };
		set_strv(&j->algorithms, simple ? hs : pk);
	} else if (j->algorithms.n == 0) {
		char *p = kpath(path, "algorithms");
		mg_schema_error(dc, key_node(dc, node, "algorithms"), p,
		                "expected at least one algorithm");
		free(p);
	}
	for (size_t i = 0; i < j->algorithms.n; i++) {
		if (is_hmac(j->algorithms.v[i]) == simple)
			continue;
		char p[96];
		snprintf(p, sizeof p, "%s.algorithms[%zu]", path, i);
		mg_schema_error(dc, item_node(dc, node, "algorithms", i), p,
		                "algorithm %s cannot be used with mode = \"%s\" (%s)",
		                j->algorithms.v[i], simple ? "simple" : "jwks",
		                simple ? "simple takes HS256, HS384, HS512"
		                       : "jwks takes RS*, PS*, ES256, ES384, EdDSA");
	}
	if (!j->audience.set)
		mg_schema_warning(dc, node, path,
		                  "no audience set: tokens issued for any audience are accepted; "
		                  "set audience to this gateway's public URL");
}

/* Fills a URL the configuration left out (a built-in provider's endpoint). */
static void default_url(char **v, const char *url)
{
	if (!*v && url)
		*v = mg_strdup(url);
}

static void default_okta_url(char **v, const char *issuer, const char *suffix)
{
	if (*v || !issuer)
		return;
	size_t n = strlen(issuer);
	while (n && issuer[n - 1] == '/')
		n--;
	char buf[1024];
	if ((size_t)snprintf(buf, sizeof buf, "%.*s%s", (int)n, issuer, suffix) < sizeof buf)
		*v = mg_strdup(buf);
}

void mg_check_oauth(struct mg_decode *dc, void *obj, const struct mg_cnode *node, const char *path)
{
	struct mg_oauth_config *o = obj;
	if (!o->present)
		return;
	require(dc, o->client_id, node, path, "client_id", "in [auth.oauth]");
	switch (o->provider) {
	case MG_OAUTH_GITHUB:
		/* GitHub has no RFC 7662 introspection: tokens are checked at /user. */
		default_url(&o->authorization_url, "https://github.com/login/oauth/authorize");
		default_url(&o->token_url, "https://github.com/login/oauth/access_token");
		default_url(&o->userinfo_url, "https://api.github.com/user");
		default_url(&o->user_id_claim, "login");
		break;
	case MG_OAUTH_GOOGLE:
		default_url(&o->authorization_url, "https://accounts.google.com/o/oauth2/v2/auth");
		default_url(&o->token_url, "https://oauth2.googleapis.com/token");
		default_url(&o->userinfo_url, "https://openidconnect.googleapis.com/v1/userinfo");
		default_url(&o->issuer, "https://accounts.google.com");
		break;
	case MG_OAUTH_OKTA:
		require(dc, o->issuer, node, path, "issuer",
		        "when provider = \"okta\" (e.g. https://<org>.okta.com/oauth2/default)");
		default_okta_url(&o->authorization_url, o->issuer, "/v1/authorize");
		default_okta_url(&o->token_url, o->issuer, "/v1/token");
		default_okta_url(&o->introspection_url, o->issuer, "/v1/introspect");
		default_okta_url(&o->userinfo_url, o->issuer, "/v1/userinfo");
		break;
	default:
		require(dc, o->authorization_url, node, path, "authorization_url",
		        "when provider = \"custom\"");
		require(dc, o->token_url, node, path, "token_url", "when provider = \"custom\"");
		if (!o->introspection_url && !o->userinfo_url)
			mg_schema_error(dc, node, path,
			                "provider = \"custom\" needs introspection_url or "
			                "userinfo_url to check tokens");
		break;
	}
	default_url(&o->user_id_claim, "sub");
	if (o->introspection_url && !o->client_secret)
		require(dc, o->client_secret, node, path, "client_secret",
		        "(or client_secret_env / client_secret_file): the introspection endpoint "
		        "authenticates the gateway");
	if (o->redirect_uri) {
		const char *h = strstr(o->redirect_uri, "://");
		const char *pth = h ? h + 3 + strcspn(h + 3, "/?#") : o->redirect_uri;
		if (strcmp(pth, "/oauth/callback") != 0) {
			char *p = kpath(path, "redirect_uri");
			mg_schema_error(dc, key_node(dc, node, "redirect_uri"), p,
			                "expected this gateway's callback URL, ending in "
			                "/oauth/callback (no query or fragment), found \"%s\"",
			                o->redirect_uri);
			free(p);
		}
	}
	const char *key_only = o->signing_key_file            ? "signing_key_file"
	                       : o->previous_signing_key_file ? "previous_signing_key_file"
	                                                      : NULL;
	if (key_only && !o->authorization_server) {
		char *p = kpath(path, key_only);
		mg_schema_error(dc, key_node(dc, node, key_only), p,
		                "signs the tokens of the authorization server: set "
		                "authorization_server = true, or remove it");
		free(p);
	}
	if (o->authorization_server && !o->redirect_uri)
		require(dc, o->redirect_uri, node, path, "redirect_uri",
		        "when authorization_server = true (users log in at the provider)");
	check_secret_len(dc, node, path, "state_secret", o->state_secret);
	if (!o->audience.set && o->introspection_url)
		mg_schema_warning(
		    dc, node, path,
		    "no audience set: introspected tokens issued for any audience are "
		    "accepted; set audience to this gateway's resource URL");
}

void mg_check_mtls(struct mg_decode *dc, void *obj, const struct mg_cnode *node, const char *path)
{
	struct mg_mtls_config *m = obj;
	for (size_t i = 0; i < m->trusted_proxies.n; i++) {
		if (mg_check_cidr_ok(m->trusted_proxies.v[i]))
			continue;
		char p[96];
		snprintf(p, sizeof p, "%s.trusted_proxies[%zu]", path, i);
		mg_schema_error(dc, item_node(dc, node, "trusted_proxies", i), p,
		                "expected an IP address or CIDR block like \"10.0.0.0/8\", found "
		                "\"%s\"",
		                m->trusted_proxies.v[i]);
	}
}

void mg_check_rate_limit(struct mg_decode *dc, void *obj, const struct mg_cnode *node,
                         const char *path)
{
	struct mg_rate_limit_config *r = obj;
	if (!r->redis_url)
		return;
	const char *u = r->redis_url;
	bool ok = false;
	if (mg_str_starts_with(u, "redis://") || mg_str_starts_with(u, "rediss://")) {
		const char *rest = strstr(u, "://") + 3;
		const char *at = strrchr(rest, '@');
		const char *host = at ? at + 1 : rest;
		ok = host[0] && host[0] != '/' && host[0] != ':';
	} else if (mg_str_starts_with(u, "unix:///")) {
		ok = true;
	}
	if (!ok) {
		char *p = kpath(path, "redis_url");
		const struct mg_cnode *n = key_node(dc, node, "redis_url");
		mg_schema_error(dc, n, p,
		                "expected redis://[user:password@]host[:port][/db], rediss://… or "
		                "unix:///path");
		free(p);
	}
}

/* Headers the gateway sends are built from configuration only: no CR, LF
 * or NUL anywhere, a token as the name, and none of the names in
 * `reserved` (the ones the gateway sets itself). */
static void check_headers(struct mg_decode *dc, const struct mg_cnode *node, const char *path,
                          const char *key, const struct mg_kvv *h, const char *const *reserved)
{
	for (size_t i = 0; i < h->n; i++) {
		const struct mg_kv *kv = &h->v[i];
		const char *why = NULL;
		for (const char *c = kv->key; *c && !why; c++)
			if (*c <= 0x20 || *c >= 0x7F || strchr("()<>@,;:\\\"/[]?={}", *c))
				why = "names are tokens (letters, digits and !#$%&'*+-.^_`|~)";
		if (!why && strpbrk(kv->value, "\r\n"))
			why = "values cannot hold CR or LF";
		for (size_t r = 0; !why && reserved && reserved[r]; r++)
			if (mg_str_eq_ci(kv->key, reserved[r]))
				why = "the gateway sets this header itself";
		if (why) {
			char *p = kpath(path, key);
			mg_schema_error(dc, key_node(dc, node, key), p, "header \"%s\": %s",
			                kv->key, why);
			free(p);
		}
	}
}

/* Extra headers usually carry a collector's credential: a warning when
 * `url` would send them in clear text (http:// to a host that is not
 * loopback). */
static void warn_clear_headers(struct mg_decode *dc, const struct mg_cnode *node, const char *path,
                               const char *url_key, const char *url, const char *headers_key,
                               const struct mg_kvv *h)
{
	if (!url || h->n == 0 || strncmp(url, "http://", 7) != 0)
		return;
	/* (MG_FF_URL refused user:password@ already) */
	const char *a = url + 7, *end = a + strcspn(a, "/?#");
	const char *bracket = *a == '[' ? memchr(a, ']', (size_t)(end - a)) : NULL; /* [v6] */
	const char *host_end = bracket ? bracket + 1 : a + strcspn(a, ":/?#");
	if (host_end > end)
		host_end = end;
	char host[256];
	snprintf(host, sizeof host, "%.*s", (int)(host_end - a), a);
	if (mg_host_is_loopback(host))
		return;
	char *p = kpath(path, url_key);
	mg_schema_warning(dc, key_node(dc, node, url_key), p,
	                  "%s are sent in clear text to %s (http://); use https:// when they "
	                  "hold a credential",
	                  headers_key, host);
	free(p);
}

/* The headers an export request gets from the gateway itself (the audit
 * export and OTLP): refused in export_headers and otlp_headers. */
static const char *const export_own_headers[] = { "Content-Type",      "Content-Encoding",
	                                          "Content-Length",    "Host",
	                                          "Transfer-Encoding", NULL };

void mg_check_audit(struct mg_decode *dc, void *obj, const struct mg_cnode *node, const char *path)
{
	struct mg_audit_config *a = obj;
	if (a->enabled && !a->stdout_enabled && !a->file && !a->export_url && node)
		mg_schema_warning(dc, node, path,
		                  "audit is enabled but has no destination (stdout, file or "
		                  "export_url): events are only counted");
	char why[256];
	for (size_t i = 0; i < a->redact_paths.n; i++) {
		struct mg_jpath jp;
		if (mg_jpath_parse(a->redact_paths.v[i], &jp, why, sizeof why) == 0) {
			mg_jpath_free(&jp);
			continue;
		}
		char *p = kpath(path, "redact_paths");
		mg_schema_error(dc, item_node(dc, node, "redact_paths", i), p,
		                "invalid JSON path \"%s\": %s", a->redact_paths.v[i], why);
		free(p);
	}
	for (size_t i = 0; i < a->redact_patterns.n; i++) {
		regex_t re;
		int rc = regcomp(&re, a->redact_patterns.v[i], REG_EXTENDED);
		if (rc == 0) {
			regfree(&re);
			continue;
		}
		regerror(rc, &re, why, sizeof why);
		char *p = kpath(path, "redact_patterns");
		mg_schema_error(dc, item_node(dc, node, "redact_patterns", i), p,
		                "invalid regular expression \"%s\" (POSIX extended): %s",
		                a->redact_patterns.v[i], why);
		free(p);
	}
	check_headers(dc, node, path, "export_headers", &a->export_headers, export_own_headers);
	warn_clear_headers(dc, node, path, "export_url", a->export_url, "export_headers",
	                   &a->export_headers);
	if (a->export_format == 1 && a->export_batch_size > 1000) {
		char *p = kpath(path, "export_batch_size");
		mg_schema_error(
		    dc, key_node(dc, node, "export_batch_size"), p,
		    "export_format = \"json_array\" (Datadog logs intake) takes at most "
		    "1000 entries per request; found %lld",
		    (long long)a->export_batch_size);
		free(p);
	}
	if (a->spool_dir && !a->export_url) {
		char *p = kpath(path, "spool_dir");
		mg_schema_warning(dc, key_node(dc, node, "spool_dir"), p,
		                  "spool_dir is only used with export_url");
		free(p);
	}
	if (a->export_compression != MG_COMPRESS_NONE && !a->export_url) {
		char *p = kpath(path, "export_compression");
		mg_schema_warning(dc, key_node(dc, node, "export_compression"), p,
		                  "export_compression is only used with export_url");
		free(p);
	}
}

void mg_check_tracing(struct mg_decode *dc, void *obj, const struct mg_cnode *node,
                      const char *path)
{
	struct mg_tracing_config *t = obj;
	if (t->enabled)
		require(dc, t->otlp_endpoint, node, path, "otlp_endpoint",
		        "when tracing is enabled");
	check_headers(dc, node, path, "otlp_headers", &t->otlp_headers, export_own_headers);
	warn_clear_headers(dc, node, path, "otlp_endpoint", t->otlp_endpoint, "otlp_headers",
	                   &t->otlp_headers);
	if (t->export_batch_size > t->queue_size) {
		/* at whichever of the two the file set (the batch size when both) */
		const char *key = node && mg_cnode_getz(dc->doc, node, "export_batch_size")
		                      ? "export_batch_size"
		                      : "queue_size";
		char *p = kpath(path, key);
		mg_schema_error(dc, key_node(dc, node, key), p,
		                "export_batch_size (%lld) is larger than queue_size (%lld): a "
		                "batch could never fill",
		                (long long)t->export_batch_size, (long long)t->queue_size);
		free(p);
	}
}

int mg_hostport_split(const char *s, char *host, size_t host_size, int *port)
{
	const char *colon = strrchr(s, ':');
	const char *h = s, *he = colon;
	if (!colon || colon == s)
		return -1;
	if (*s == '[') {
		if (colon[-1] != ']')
			return -1;
		h = s + 1;
		he = colon - 1;
	} else if (memchr(s, ':', (size_t)(colon - s))) {
		return -1; /* an IPv6 address needs brackets */
	}
	int64_t p;
	if (he <= h || (size_t)(he - h) >= host_size || mg_parse_i64(colon + 1, 1, 65535, &p) < 0)
		return -1;
	memcpy(host, h, (size_t)(he - h));
	host[he - h] = '\0';
	*port = (int)p;
	return 0;
}

int mg_url_host_port(const char *url, char *host, size_t host_size, int *port)
{
	int dflt;
	const char *a; /* the authority */
	if (strncmp(url, "http://", 7) == 0) {
		dflt = 80;
		a = url + 7;
	} else if (strncmp(url, "https://", 8) == 0) {
		dflt = 443;
		a = url + 8;
	} else {
		return -1;
	}
	size_t n = strcspn(a, "/?#");
	const char *at = memchr(a, '@', n);
	if (at) {
		n -= (size_t)(at + 1 - a);
		a = at + 1;
	}
	char auth[300];
	if (n == 0 || n >= sizeof auth - 3)
		return -1;
	memcpy(auth, a, n);
	auth[n] = '\0';
	/* without a port: as "host:default" through the one parser */
	const char *close = strrchr(auth, ']');
	const char *colon = strrchr(auth, ':');
	if (!colon || (auth[0] == '[' && (!close || colon < close))) {
		char with[sizeof auth + 8];
		snprintf(with, sizeof with, "%s:%d", auth, dflt);
		return mg_hostport_split(with, host, host_size, port);
	}
	return mg_hostport_split(auth, host, host_size, port);
}

void mg_check_metrics(struct mg_decode *dc, void *obj, const struct mg_cnode *node,
                      const char *path)
{
	struct mg_metrics_config *m = obj;
	char host[256];
	int port;
	if (m->listen && mg_hostport_split(m->listen, host, sizeof host, &port) < 0) {
		char *p = kpath(path, "listen");
		mg_schema_error(dc, key_node(dc, node, "listen"), p,
		                "expected host:port (e.g. \"127.0.0.1:9464\" or \"[::1]:9464\"), "
		                "found \"%s\"",
		                m->listen);
		free(p);
	}
	static const char *const taken[] = { "/health", "/live", "/ready", NULL };
	for (size_t i = 0; m->path && taken[i]; i++) {
		if (strcmp(m->path, taken[i]) == 0) {
			char *p = kpath(path, "path");
			mg_schema_error(dc, key_node(dc, node, "path"), p,
			                "\"%s\" is already served by the gateway; choose another "
			                "path such as \"/metrics\"",
			                m->path);
			free(p);
		}
	}
}

static void check_transport(struct mg_decode *dc, struct mg_upstream_config *u,
                            const struct mg_cnode *node, const char *path)
{
	static const char *const reserved[] = {
		"Content-Type",   "Content-Length",       "Accept",     "Host",
		"Mcp-Session-Id", "MCP-Protocol-Version", "Mcp-Method", "Mcp-Name",
		"Last-Event-ID",  "Transfer-Encoding",    "Connection", NULL
	};
	check_headers(dc, node, path, "headers", &u->headers, reserved);
	for (size_t i = 0; i < u->n_identity_headers; i++) {
		char p[160];
		snprintf(p, sizeof p, "%s.identity_headers[%zu]", path, i);
		check_headers(dc, item_node(dc, node, "identity_headers", i), p, "headers",
		              &u->identity_headers[i].headers, reserved);
		const char *id = u->identity_headers[i].identity;
		if (id && !strchr(id, ':')) {
			char *kp = kpath(p, "identity");
			mg_schema_error(dc, item_node(dc, node, "identity_headers", i), kp,
			                "expected a provider-qualified identity such as "
			                "\"api_key:%s\" or \"jwt:%s\", found \"%s\"",
			                id, id, id);
			free(kp);
		}
		for (size_t j = 0; j < i && id; j++)
			if (u->identity_headers[j].identity &&
			    strcmp(u->identity_headers[j].identity, id) == 0) {
				char *kp = kpath(p, "identity");
				mg_schema_error(dc, item_node(dc, node, "identity_headers", i), kp,
				                "identity \"%s\" is listed twice", id);
				free(kp);
			}
	}
	const char *tname = mg_transport_name(u->transport);
	if (u->transport == MG_TRANSPORT_STDIO) {
		require(dc, u->command, node, path, "command", "when transport = \"stdio\"");
		if (u->url) {
			char *p = kpath(path, "url");
			mg_schema_error(
			    dc, key_node(dc, node, "url"), p,
			    "url is for transport = \"http\" or \"sse\", not \"stdio\"");
			free(p);
		}
	} else {
		require(dc, u->url, node, path, "url",
		        tname[0] == 'h' ? "when transport = \"http\"" : "when transport = \"sse\"");
		if (u->command) {
			char *p = kpath(path, "command");
			mg_schema_error(dc, key_node(dc, node, "command"), p,
			                "command is for transport = \"stdio\", not \"%s\"", tname);
			free(p);
		}
	}
}

void mg_check_upstream_entry(struct mg_decode *dc, void *obj, const struct mg_cnode *node,
                             const char *path)
{
	struct mg_upstream_config *u = obj;
	if (!node)
		return;
	check_transport(dc, u, node, path);
	if (u->name) {
		for (const char *c = u->name; *c; c++) {
			if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
			    (*c >= '0' && *c <= '9') || *c == '-' || *c == '_')
				continue;
			char *p = kpath(path, "name");
			mg_schema_error(dc, key_node(dc, node, "name"), p,
			                "expected letters, digits, '-' and '_' only, found \"%s\"",
			                u->name);
			free(p);
			break;
		}
	}
	if (u->path_prefix && strlen(u->path_prefix) > 1 &&
	    u->path_prefix[strlen(u->path_prefix) - 1] == '/')
		u->path_prefix[strlen(u->path_prefix) - 1] = '\0';
}

/* [upstream] keys that belong to the whole section, not to the single
 * upstream's transport. */
static bool section_key(const struct mg_cnode *c)
{
	static const char *const keys[] = { "servers",           "cursor_secret",
		                            "cursor_secret_env", "cursor_secret_file",
		                            "pins_file",         "federation",
		                            "tool_separator" };
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		if (c->key_len == strlen(keys[i]) && memcmp(c->key, keys[i], c->key_len) == 0)
			return true;
	}
	return false;
}

/* cursor_secret long enough; pins_file set when any server pins its tools
 * (the error points at the first tool_pinning that needs it). */
static void check_pinning(struct mg_decode *dc, const struct mg_upstream_section *s,
                          const struct mg_cnode *node, const char *path)
{
	check_secret_len(dc, node, path, "cursor_secret", s->cursor_secret);
	if (s->pins_file)
		return;
	const struct mg_cnode *arr = mg_cnode_getz(dc->doc, node, "servers");
	const struct mg_cnode *item = arr ? arr->first : NULL;
	size_t n = s->n_servers ? s->n_servers : 1;
	for (size_t i = 0; i < n; i++, item = item ? item->next : NULL) {
		const struct mg_upstream_config *u = s->n_servers ? &s->servers[i] : &s->single;
		if (u->tool_pinning == MG_PINNING_OFF)
			continue;
		char p[96];
		if (s->n_servers)
			snprintf(p, sizeof p, "%s.servers[%zu].tool_pinning", path, i);
		else
			snprintf(p, sizeof p, "%s.tool_pinning", path);
		mg_schema_error(dc, key_node(dc, s->n_servers ? item : node, "tool_pinning"), p,
		                "tool_pinning = \"%s\" needs upstream.pins_file (where pinned tool "
		                "definitions are kept), e.g. \"/var/lib/mcp-guard/pins.json\"",
		                u->tool_pinning == MG_PINNING_WARN ? "warn" : "block");
		return;
	}
}

void mg_check_upstream(struct mg_decode *dc, void *obj, const struct mg_cnode *node,
                       const char *path)
{
	struct mg_upstream_section *s = obj;
	if (!node) {
		mg_schema_error(dc, NULL, "upstream",
		                "no upstream configured: add an [upstream] section (see "
		                "`mcp-guard init`)");
		return;
	}
	for (const struct mg_cnode *c = node->first; c; c = c->next) {
		if (!section_key(c))
			s->single_present = true;
	}
	if (s->single_present && s->n_servers) {
		mg_schema_error(dc, node, path,
		                "use either the transport keys directly in [upstream] or "
		                "[[upstream.servers]] entries, not both");
		return;
	}
	if (!s->single_present && !s->n_servers) {
		mg_schema_error(dc, node, path,
		                "no upstream configured: set transport and command (or url) in "
		                "[upstream], or add [[upstream.servers]]");
		return;
	}
	check_pinning(dc, s, node, path);
	if (s->single_present) {
		check_transport(dc, &s->single, node, path);
		free(s->single.name);
		s->single.name = mg_strdup("default");
		free(s->single.path_prefix);
		s->single.path_prefix = mg_strdup("/");
		return;
	}
	const struct mg_cnode *arr = mg_cnode_getz(dc->doc, node, "servers");
	const struct mg_cnode *item = arr ? arr->first : NULL;
	for (size_t i = 0; i < s->n_servers; i++, item = item ? item->next : NULL) {
		const struct mg_cnode *prev = arr ? arr->first : NULL;
		for (size_t j = 0; j < i; j++, prev = prev ? prev->next : NULL) {
			struct mg_upstream_config *a = &s->servers[i], *b = &s->servers[j];
			char p[96];
			if (a->name && b->name && strcmp(a->name, b->name) == 0) {
				snprintf(p, sizeof p, "%s.servers[%zu].name", path, i);
				const struct mg_cnode *first = key_node(dc, prev, "name");
				mg_schema_error(dc, key_node(dc, item, "name"), p,
				                "duplicate upstream name \"%s\" (first at line %u)",
				                a->name, first ? first->loc.line : 0);
			}
			if (a->path_prefix && b->path_prefix &&
			    strcmp(a->path_prefix, b->path_prefix) == 0) {
				snprintf(p, sizeof p, "%s.servers[%zu].path_prefix", path, i);
				const struct mg_cnode *first = key_node(dc, prev, "path_prefix");
				mg_schema_error(dc, key_node(dc, item, "path_prefix"), p,
				                "duplicate path_prefix \"%s\" (first at line %u)",
				                a->path_prefix, first ? first->loc.line : 0);
			}
		}
	}
}

/* [[upstream.servers]]: paths the gateway serves itself cannot be a
 * server's path_prefix, nor can another server's <mcp_path>/<name>. */
static void check_server_paths(struct mg_decode *dc, const struct mg_config *c,
                               const struct mg_cnode *node)
{
	const struct mg_upstream_section *s = &c->upstream;
	const struct mg_cnode *up = node ? mg_cnode_getz(dc->doc, node, "upstream") : NULL;
	if (s->federation && !s->n_servers) {
		mg_schema_error(dc, key_node(dc, up, "federation"), "upstream.federation",
		                "federation aggregates [[upstream.servers]] entries: add them (the "
		                "single [upstream] form has nothing to federate)");
		return;
	}
	const char *sep = s->tool_separator;
	if (sep) {
		size_t n = strlen(sep);
		bool ok = n >= 1 && n <= 8;
		for (size_t i = 0; ok && i < n; i++)
			ok = (sep[i] >= 'a' && sep[i] <= 'z') || (sep[i] >= 'A' && sep[i] <= 'Z') ||
			     (sep[i] >= '0' && sep[i] <= '9') || sep[i] == '_' || sep[i] == '.' ||
			     sep[i] == '-';
		if (!ok) {
			mg_schema_error(dc, key_node(dc, up, "tool_separator"),
			                "upstream.tool_separator",
			                "expected 1 to 8 of A-Z a-z 0-9 _ . - (tool names allow no "
			                "others), found \"%s\"",
			                sep);
			return;
		}
	}
	if (!s->n_servers || !c->server.mcp_path)
		return;
	const struct mg_cnode *arr = up ? mg_cnode_getz(dc->doc, up, "servers") : NULL;
	const struct mg_cnode *item = arr ? arr->first : NULL;
	static const char *const fixed[] = {
		"/health", "/live",     "/ready",           "/routes",         "/authorize",
		"/token",  "/register", "/oauth/authorize", "/oauth/callback", NULL
	};
	const char *base = strcmp(c->server.mcp_path, "/") == 0 ? "" : c->server.mcp_path;
	for (size_t i = 0; i < s->n_servers; i++, item = item ? item->next : NULL) {
		const char *pp = s->servers[i].path_prefix;
		if (!pp)
			continue;
		char p[96], why[200] = "";
		snprintf(p, sizeof p, "upstream.servers[%zu].path_prefix", i);
		for (size_t k = 0; fixed[k] && !why[0]; k++) {
			if (strcmp(pp, fixed[k]) == 0)
				snprintf(why, sizeof why, "the gateway serves %s itself", pp);
		}
		if (!why[0] && strncmp(pp, "/.well-known", 12) == 0 && (pp[12] == '/' || !pp[12]))
			snprintf(why, sizeof why, "paths under /.well-known are the gateway's own");
		if (!why[0] && s->federation && strcmp(pp, c->server.mcp_path) == 0)
			snprintf(why, sizeof why,
			         "with federation = true it is the federated endpoint "
			         "(server.mcp_path)");
		if (!why[0] && c->metrics.enabled && c->metrics.path && !c->metrics.listen &&
		    strcmp(pp, c->metrics.path) == 0)
			snprintf(why, sizeof why, "it is metrics.path");
		for (size_t j = 0; j < s->n_servers && !why[0]; j++) {
			const char *name = s->servers[j].name;
			size_t bl = strlen(base);
			if (name && strncmp(pp, base, bl) == 0 && pp[bl] == '/' &&
			    strcmp(pp + bl + 1, name) == 0)
				snprintf(why, sizeof why,
				         "it is where server \"%s\" is also reachable "
				         "(<mcp_path>/<name>)",
				         name);
		}
		if (why[0])
			mg_schema_error(dc, key_node(dc, item, "path_prefix"), p,
			                "\"%s\" cannot be a path_prefix: %s", pp, why);
		const char *name = s->servers[i].name;
		if (s->federation && s->servers[i].federate && name && sep && strstr(name, sep)) {
			/* "a" with tool "b__c" and "a__b" with tool "c" would both be
			 * "a__b__c": a name without the separator keeps the split
			 * unambiguous. */
			snprintf(p, sizeof p, "upstream.servers[%zu].name", i);
			mg_schema_error(dc, key_node(dc, item, "name"), p,
			                "\"%s\" contains the tool_separator \"%s\": its tool names "
			                "could collide with another server's on the federated "
			                "endpoint; rename it or set federate = false",
			                name, sep);
		}
		if (s->servers[i].strip_prefix) {
			snprintf(p, sizeof p, "upstream.servers[%zu].strip_prefix", i);
			mg_schema_warning(
			    dc, key_node(dc, item, "strip_prefix"), p,
			    "strip_prefix has no effect: the upstream is always called at "
			    "its own url (remove the key)");
		}
	}
}

void mg_check_root(struct mg_decode *dc, void *obj, const struct mg_cnode *node, const char *path)
{
	struct mg_config *c = obj;
	(void)path;
	check_server_paths(dc, c, node);
	const struct mg_cnode *auth = node ? mg_cnode_getz(dc->doc, node, "auth") : NULL;
	const struct mg_cnode *mtls = auth ? mg_cnode_getz(dc->doc, auth, "mtls") : NULL;
	if (c->auth.mtls.enabled && !c->server.tls.client_ca_path &&
	    !c->auth.mtls.trusted_proxies.n)
		mg_schema_error(dc, mtls, "auth.mtls",
		                "mTLS is enabled but no certificate can reach the gateway: set "
		                "server.tls.client_ca_path (direct TLS) or trusted_proxies (a "
		                "TLS-terminating proxy)");
	bool any_auth = c->auth.n_api_keys || c->auth.jwt.present || c->auth.oauth.present ||
	                c->auth.mtls.enabled;
	if (c->metrics.enabled && c->metrics.path && c->server.mcp_path &&
	    strcmp(c->metrics.path, c->server.mcp_path) == 0) {
		const struct mg_cnode *mt = node ? mg_cnode_getz(dc->doc, node, "metrics") : NULL;
		mg_schema_error(dc, key_node(dc, mt, "path"), "metrics.path",
		                "\"%s\" is the MCP endpoint (server.mcp_path)", c->metrics.path);
	}
	if (!any_auth && c->server.host && !mg_host_is_loopback(c->server.host)) {
		const struct mg_cnode *srv = node ? mg_cnode_getz(dc->doc, node, "server") : NULL;
		mg_schema_error(dc, key_node(dc, srv, "host"), "server.host",
		                "no authentication is configured, so the gateway may only listen "
		                "on a loopback address, not \"%s\"; add [[auth.api_keys]] (see "
		                "`mcp-guard keygen`) or another provider",
		                c->server.host);
	}
}
