/*
 * schema.c - the table of every configuration key (see schema.h).
 *
 * To add a key: add a member to the struct in config.h and one line here
 * with its type, default, range and help. Decoding, validation, `init`
 * templates, the reference in docs/configuration.md and environment
 * overrides all follow from this table. Cross-field rules (a JWT secret
 * when mode = "simple", unique upstream names, ...) live in the section's
 * check function in checks.c.
 */
#include "config/schema.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "config/checks.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

#define BOOL(S, M, N, D, H)                                                                        \
	{                                                                                          \
		.name = N, .type = MG_F_BOOL, .off = offsetof(S, M), .def = D, .help = H           \
	}
#define INT(S, M, N, D, LO, HI, H)                                                                 \
	{                                                                                          \
		.name = N, .type = MG_F_INT, .off = offsetof(S, M), .def = D, .min = LO,           \
		.max = HI, .help = H                                                               \
	}
#define DBL(S, M, N, D, LO, HI, H)                                                                 \
	{                                                                                          \
		.name = N, .type = MG_F_DOUBLE, .off = offsetof(S, M), .def = D, .dmin = LO,       \
		.dmax = HI, .help = H                                                              \
	}
#define STR(S, M, N, D, FL, EX, H)                                                                 \
	{                                                                                          \
		.name = N, .type = MG_F_STRING, .off = offsetof(S, M), .def = D, .flags = FL,      \
		.example = EX, .help = H                                                           \
	}
#define ENUM(S, M, N, D, E, H)                                                                     \
	{                                                                                          \
		.name = N, .type = MG_F_ENUM, .off = offsetof(S, M), .def = D, .enums = E,         \
		.help = H                                                                          \
	}
#define STRS(S, M, N, FL, EX, H)                                                                   \
	{                                                                                          \
		.name = N, .type = MG_F_STRINGS, .off = offsetof(S, M), .flags = FL,               \
		.example = EX, .help = H                                                           \
	}
#define MAP(S, M, N, EX, H)                                                                        \
	{                                                                                          \
		.name = N, .type = MG_F_MAP, .off = offsetof(S, M), .example = EX, .help = H       \
	}
#define SECRET_MAP(S, M, N, EX, H)                                                                 \
	{                                                                                          \
		.name = N, .type = MG_F_MAP, .off = offsetof(S, M), .flags = MG_FF_SECRET,         \
		.example = EX, .help = H                                                           \
	}
#define MAPS(S, M, N, EX, H)                                                                       \
	{                                                                                          \
		.name = N, .type = MG_F_MAP_STRINGS, .off = offsetof(S, M), .example = EX,         \
		.help = H                                                                          \
	}
#define TABLE(S, M, N, SUB)                                                                        \
	{                                                                                          \
		.name = N, .type = MG_F_TABLE, .off = offsetof(S, M), .sub = &SUB                  \
	}
#define TABLES(S, M, C, N, SUB)                                                                    \
	{                                                                                          \
		.name = N, .type = MG_F_TABLE_ARRAY, .off = offsetof(S, M),                        \
		.count_off = offsetof(S, C), .sub = &SUB                                           \
	}

#define SECTION(N, S, F, PRESENT, H, CHECK)                                                        \
	{                                                                                          \
		.name = N, .size = sizeof(S), .present_off = PRESENT, .fields = F,                 \
		.n_fields = COUNT(F), .help = H, .check = CHECK                                    \
	}

static const char *const jwt_modes[] = { "simple", "jwks", NULL };
static const char *const jwt_algs[] = { "HS256", "HS384", "HS512", "RS256", "RS384",
	                                "RS512", "PS256", "PS384", "PS512", "ES256",
	                                "ES384", "EdDSA", NULL };
static const char *const oauth_providers[] = { "github", "google", "okta", "custom", NULL };
static const char *const mtls_sources[] = { "cn", "san_dns", "san_email", NULL };
static const char *const transports[] = { "stdio", "http", "sse", NULL };
static const char *const stdio_modes[] = { "shared", "per_session", NULL };
static const char *const protocols[] = { "auto", "legacy", NULL };
static const char *const tool_pinnings[] = { "off", "warn", "block", NULL };
static const char *const log_levels[] = { "error", "warn", "info", "debug", NULL };
static const char *const log_formats[] = { "text", "json", NULL };
static const char *const audit_overflows[] = { "drop", "block", NULL };
static const char *const audit_fsyncs[] = { "never", "batch", "always", NULL };
static const char *const otlp_protocols[] = { "http/protobuf", "http/json", NULL };
static const char *const compressions[] = { "none", "gzip", NULL };
static const char *const audit_formats[] = { "ndjson", "json_array", "splunk_hec",
	                                     "elasticsearch_bulk", NULL };

/* ---- [server] -------------------------------------------------------------------------- */

#define S struct mg_tls_config
static const struct mg_field tls_fields[] = {
	BOOL(S, enabled, "enabled", "false", "Serve HTTPS instead of plain HTTP."),
	STR(S, cert_path, "cert_path", NULL, MG_FF_FILE, "/etc/mcp-guard/server.crt",
	    "PEM certificate chain presented to clients."),
	STR(S, key_path, "key_path", NULL, MG_FF_FILE, "/etc/mcp-guard/server.key",
	    "PEM private key of the certificate."),
	STR(S, client_ca_path, "client_ca_path", NULL, MG_FF_FILE, "/etc/mcp-guard/clients-ca.crt",
	    "PEM CA bundle; when set, clients must present a certificate it signed (mTLS)."),
};
#undef S
static const struct mg_section tls_section =
    SECTION("server.tls", struct mg_tls_config, tls_fields, SIZE_MAX,
            "TLS for the client-facing listener.", mg_check_tls);

#define S struct mg_server_config
static const struct mg_field server_fields[] = {
	STR(S, host, "host", "127.0.0.1", 0, NULL,
	    "Address to listen on. Anything but a loopback address requires authentication."),
	INT(S, port, "port", "3000", 1, 65535, "TCP port to listen on."),
	STR(S, mcp_path, "mcp_path", "/mcp", MG_FF_PATH, NULL, "Path of the MCP endpoint."),
	STR(S, sse_path, "sse_path", "/sse", MG_FF_PATH, NULL,
	    "Where 2024-11-05 HTTP+SSE clients open their stream (GET); its endpoint event names "
	    "messages_path."),
	STR(S, messages_path, "messages_path", "/messages", MG_FF_PATH, NULL,
	    "Where 2024-11-05 HTTP+SSE clients POST their messages (?sessionId=...)."),
	BOOL(S, legacy_sse, "legacy_sse", "true",
	     "Serve 2024-11-05 HTTP+SSE clients at sse_path and messages_path."),
	STR(S, public_url, "public_url", NULL, MG_FF_URL, "https://mcp.example.com",
	    "URL clients use to reach the gateway (OAuth resource metadata, audience). "
	    "Defaults to http(s)://host:port."),
	STRS(S, allowed_origins, "allowed_origins", 0, "[\"https://app.example.com\"]",
	     "Origins allowed to call the endpoint from a browser; requests with any other "
	     "Origin get 403. Loopback origins are always allowed on a loopback listener."),
	INT(S, max_connections, "max_connections", "1024", 1, 1000000,
	    "Open client connections at most; further connections are refused."),
	INT(S, max_sessions, "max_sessions", "10000", 1, 10000000,
	    "Live MCP sessions at most; initialize beyond it is answered 503."),
	INT(S, max_header_bytes, "max_header_bytes", "16384", 1024, 1048576,
	    "Largest request header block accepted (431 beyond)."),
	INT(S, max_body_bytes, "max_body_bytes", "4194304", 1024, 268435456,
	    "Largest request body accepted (413 with a JSON-RPC error beyond)."),
	INT(S, max_json_depth, "max_json_depth", "64", 8, 1024,
	    "Deepest JSON nesting accepted in a message."),
	INT(S, idle_timeout_secs, "idle_timeout_secs", "60", 1, 86400,
	    "Seconds a keep-alive connection may stay idle, or a client may take to send a "
	    "request."),
	INT(S, request_timeout_secs, "request_timeout_secs", "120", 1, 86400,
	    "Seconds an upstream may take to answer a request before it is cancelled."),
	INT(S, session_idle_timeout_secs, "session_idle_timeout_secs", "1800", 10, 604800,
	    "Seconds a session may stay unused before it is ended."),
	INT(S, sse_keepalive_secs, "sse_keepalive_secs", "20", 1, 300,
	    "Seconds between keep-alive comments on idle SSE streams."),
	INT(S, sse_replay_events, "sse_replay_events", "128", 0, 100000,
	    "Events kept per stream for Last-Event-ID resumption."),
	INT(S, shutdown_grace_secs, "shutdown_grace_secs", "10", 0, 3600,
	    "Seconds in-flight requests get to finish on SIGTERM/SIGINT."),
	ENUM(S, log_level, "log_level", "info", log_levels, "Diagnostic log level."),
	ENUM(S, log_format, "log_format", "text", log_formats,
	     "Diagnostic log format on stderr: `text` (time, level, message, then "
	     "request_id=… trace_id=…) or `json` (one object per line: time, level, msg, "
	     "request_id, trace_id), for log collectors."),
	TABLE(S, tls, "tls", tls_section),
};
#undef S
static const struct mg_section server_section =
    SECTION("server", struct mg_server_config, server_fields, SIZE_MAX,
            "The client-facing listener.", mg_check_server);

/* ---- [auth] ---------------------------------------------------------------------------- */

#define S struct mg_api_key_config
static const struct mg_field api_key_fields[] = {
	STR(S, id, "id", NULL, MG_FF_REQUIRED, "\"alice\"",
	    "Identity of the key's holder (audit logs, rate limits)."),
	STR(S, key_hash, "key_hash", NULL, MG_FF_REQUIRED, "\"<output of mcp-guard hash-key>\"",
	    "Base64 SHA-256 of the key, from `mcp-guard keygen` or `hash-key`. The key itself "
	    "is never stored."),
	STRS(S, allowed_tools, "allowed_tools", 0, "[\"echo\", \"get_*\"]",
	     "Tools this key may call (globs allowed). Absent: all tools; empty: none."),
	STRS(S, allowed_resources, "allowed_resources", 0, "[\"file:///docs/*\"]",
	     "Resource URIs this key may read (globs). Absent: all; empty: none."),
	STRS(S, allowed_prompts, "allowed_prompts", 0, "[\"summarize\"]",
	     "Prompts this key may get (globs). Absent: all; empty: none."),
	{ .name = "rate_limit",
	  .type = MG_F_INT,
	  .off = offsetof(S, rate_limit),
	  .min = 1,
	  .max = 1000000,
	  .example = "10",
	  .help = "Requests per second for this key; overrides rate_limit.requests_per_second." },
};
#undef S
static const struct mg_section api_key_section =
    SECTION("auth.api_keys", struct mg_api_key_config, api_key_fields, SIZE_MAX,
            "API keys: clients send `Authorization: Bearer mcp_…` or `X-API-Key`.", NULL);

#define S struct mg_jwt_config
static const struct mg_field jwt_fields[] = {
	ENUM(S, mode, "mode", "simple", jwt_modes,
	     "simple: HMAC shared secret (HS*); jwks: public keys from jwks_url."),
	STR(S, secret, "secret", NULL, MG_FF_SECRET, "\"<at least 32 bytes>\"",
	    "HMAC secret for mode = \"simple\" (or secret_env / secret_file)."),
	STR(S, jwks_url, "jwks_url", NULL, MG_FF_URL,
	    "\"https://idp.example.com/.well-known/jwks.json\"",
	    "JWKS endpoint for mode = \"jwks\"."),
	BOOL(S, allow_private_networks, "allow_private_networks", "false",
	     "Let jwks_url reach loopback and private addresses (an IdP inside the network). "
	     "Link-local and cloud metadata addresses stay refused."),
	{ .name = "algorithms",
	  .type = MG_F_STRINGS,
	  .off = offsetof(S, algorithms),
	  .flags = MG_FF_LIST_ENUM,
	  .enums = jwt_algs,
	  .example = "[\"RS256\"]",
	  .help = "Accepted algorithms. Default: HS256 for simple; RS256, ES256 and EdDSA for "
	          "jwks. The token's own alg header never widens this list." },
	INT(S, cache_duration_secs, "cache_duration_secs", "3600", 10, 604800,
	    "Seconds the JWKS is cached before it is fetched again."),
	STR(S, issuer, "issuer", NULL, 0, "\"https://idp.example.com/\"", "Required `iss` claim."),
	STRS(S, audience, "audience", 0, "\"https://mcp.example.com\"",
	     "Accepted `aud` values (this gateway's resource URL)."),
	STR(S, user_id_claim, "user_id_claim", "sub", 0, NULL, "Claim that names the identity."),
	STR(S, scopes_claim, "scopes_claim", "scope", 0, NULL,
	    "Claim holding scopes (space-separated string or array)."),
	INT(S, leeway_secs, "leeway_secs", "60", 0, 600,
	    "Clock skew tolerated on exp, nbf and iat."),
	MAPS(S, scope_tool_mapping, "scope_tool_mapping",
	     "{ \"mcp:read\" = [\"get_*\"], \"mcp:admin\" = [\"*\"] }",
	     "Scope → tools it grants (globs)."),
	STRS(S, required_scopes, "required_scopes", 0, "[\"mcp:use\"]",
	     "Scopes every token must carry; a valid token without them gets 403 "
	     "insufficient_scope."),
	STR(S, rate_limit_claim, "rate_limit_claim", NULL, 0, "\"mcp_rate_limit\"",
	    "Claim holding the caller's own requests per second (a positive number), "
	    "overriding rate_limit.requests_per_second; absent or not a positive number: "
	    "the default applies."),
};
#undef S
static const struct mg_section jwt_section = {
	.name = "auth.jwt",
	.size = sizeof(struct mg_jwt_config),
	.present_off = offsetof(struct mg_jwt_config, present),
	.fields = jwt_fields,
	.n_fields = COUNT(jwt_fields),
	.help = "JWT bearer tokens (HMAC or JWKS).",
	.check = mg_check_jwt,
	.template_hidden = true,
};

#define S struct mg_oauth_config
static const struct mg_field oauth_fields[] = {
	ENUM(S, provider, "provider", "custom", oauth_providers, "OAuth 2.1 authorization server."),
	STR(S, client_id, "client_id", NULL, 0, "\"mcp-guard\"", "OAuth client id."),
	STR(S, client_secret, "client_secret", NULL, MG_FF_SECRET, "\"<secret>\"",
	    "OAuth client secret (or client_secret_env / client_secret_file)."),
	STR(S, redirect_uri, "redirect_uri", NULL, MG_FF_URL,
	    "\"https://mcp.example.com/oauth/callback\"",
	    "Redirect URI registered at the provider for the login flow: this gateway's "
	    "/oauth/callback. Unset: /oauth/authorize and /oauth/callback answer 404."),
	STRS(S, scopes, "scopes", 0, "[\"openid\", \"profile\"]", "Scopes requested."),
	STR(S, authorization_url, "authorization_url", NULL, MG_FF_URL,
	    "\"https://idp.example.com/authorize\"", "Authorization endpoint (custom provider)."),
	STR(S, token_url, "token_url", NULL, MG_FF_URL, "\"https://idp.example.com/token\"",
	    "Token endpoint (custom provider)."),
	STR(S, introspection_url, "introspection_url", NULL, MG_FF_URL,
	    "\"https://idp.example.com/introspect\"", "RFC 7662 token introspection endpoint."),
	STR(S, userinfo_url, "userinfo_url", NULL, MG_FF_URL,
	    "\"https://idp.example.com/userinfo\"", "OpenID Connect userinfo endpoint."),
	STR(S, user_id_claim, "user_id_claim", NULL, 0, "\"sub\"",
	    "Member of the introspection or userinfo answer that names the identity. "
	    "Default: \"login\" for github, \"sub\" otherwise."),
	MAPS(S, scope_tool_mapping, "scope_tool_mapping", "{ \"mcp:read\" = [\"get_*\"] }",
	     "Scope → tools it grants (globs)."),
	STR(S, issuer, "issuer", NULL, MG_FF_URL, "\"https://dev-123.okta.com/oauth2/default\"",
	    "Issuer of the authorization server. provider = \"okta\": required, and the "
	    "authorization, token, introspection and userinfo URLs default to "
	    "<issuer>/v1/authorize, /v1/token, /v1/introspect and /v1/userinfo."),
	BOOL(S, allow_private_networks, "allow_private_networks", "false",
	     "Let the provider's URLs (introspection, userinfo, token) reach loopback and "
	     "private addresses. Link-local and cloud metadata addresses stay refused."),
	STRS(S, audience, "audience", 0, "[\"https://mcp.example.com/mcp\"]",
	     "Accepted `aud` values in the introspection answer. Unset: not checked (a "
	     "warning; userinfo answers carry no audience)."),
	INT(S, cache_duration_secs, "cache_duration_secs", "300", 1, 86400,
	    "Seconds a validated token is remembered (keyed by its SHA-256, never past its "
	    "exp); refused tokens are remembered 10 seconds."),
	STR(S, state_secret, "state_secret", NULL, MG_FF_SECRET, "\"<at least 32 bytes>\"",
	    "Key that seals the login flow's `state` (or state_secret_env / state_secret_file). "
	    "Unset: a random key per process, so a login must come back to the instance that "
	    "started it; several instances behind one redirect_uri need the same secret."),
	BOOL(S, authorization_server, "authorization_server", "false",
	     "Act as the OAuth authorization server of MCP clients (RFC 8414 metadata, "
	     "registration, client ID metadata documents, consent, PKCE, the gateway's own "
	     "short-lived tokens), logging users in at this provider. Needs redirect_uri."),
	STR(S, ca_file, "ca_file", NULL, MG_FF_FILE, "\"/etc/mcp-guard/idp-ca.pem\"",
	    "PEM CA bundle that this section's HTTPS fetches (token, introspection, userinfo, "
	    "client ID metadata documents) trust instead of the system's: a provider or client "
	    "documents behind a private CA. Unset: the system's CA bundle."),
	STR(S, signing_key_file, "signing_key_file", NULL, MG_FF_FILE,
	    "\"/etc/mcp-guard/oauth-signing.pem\"",
	    "Ed25519 private key (PEM, `openssl genpkey -algorithm ed25519`) that signs the "
	    "facade's access tokens, so every instance and every start publishes the same key "
	    "(grants still live in memory: a restart logs users out). Re-read on reload: a new "
	    "key signs from then on, and the replaced one stays in the JWKS and keeps "
	    "validating until its tokens expire. Unset: a random key per process."),
	STR(S, previous_signing_key_file, "previous_signing_key_file", NULL, MG_FF_FILE,
	    "\"/etc/mcp-guard/oauth-signing.old.pem\"",
	    "A retired Ed25519 key (PEM): published in the JWKS and accepted, never used to "
	    "sign. Set it to the old key when rotating across a restart; remove it once the "
	    "access tokens it signed (5 minutes) have expired."),
};
#undef S
static const struct mg_section oauth_section = {
	.name = "auth.oauth",
	.size = sizeof(struct mg_oauth_config),
	.present_off = offsetof(struct mg_oauth_config, present),
	.fields = oauth_fields,
	.n_fields = COUNT(oauth_fields),
	.help = "OAuth 2.1 (opaque tokens checked by introspection or userinfo).",
	.check = mg_check_oauth,
	.template_hidden = true,
};

#define S struct mg_mtls_config
static const struct mg_field mtls_fields[] = {
	BOOL(S, enabled, "enabled", "false", "Authenticate clients by their TLS certificate."),
	ENUM(S, identity_source, "identity_source", "cn", mtls_sources,
	     "Certificate field that names the identity."),
	STRS(S, allowed_tools, "allowed_tools", 0, "[\"*\"]",
	     "Tools certificate holders may call. Absent: all; empty: none."),
	{ .name = "rate_limit",
	  .type = MG_F_INT,
	  .off = offsetof(S, rate_limit),
	  .min = 1,
	  .max = 1000000,
	  .example = "10",
	  .help = "Requests per second per certificate identity." },
	STRS(S, trusted_proxies, "trusted_proxies", 0, "[\"10.0.0.0/8\"]",
	     "Addresses (IP or CIDR) whose X-Client-Cert-* headers are believed; stripped from "
	     "everyone else."),
};
#undef S
static const struct mg_section mtls_section = {
	.name = "auth.mtls",
	.size = sizeof(struct mg_mtls_config),
	.present_off = offsetof(struct mg_mtls_config, present),
	.fields = mtls_fields,
	.n_fields = COUNT(mtls_fields),
	.help = "Mutual TLS client certificates.",
	.check = mg_check_mtls,
	.template_hidden = true,
};

#define S struct mg_auth_config
static const struct mg_field auth_fields[] = {
	TABLES(S, api_keys, n_api_keys, "api_keys", api_key_section),
	TABLE(S, jwt, "jwt", jwt_section),
	TABLE(S, oauth, "oauth", oauth_section),
	TABLE(S, mtls, "mtls", mtls_section),
};
#undef S
static const struct mg_section auth_section =
    SECTION("auth", struct mg_auth_config, auth_fields, SIZE_MAX,
            "Authentication providers, tried in order: mTLS, API keys, JWT, OAuth.", mg_check_auth);

/* ---- [rate_limit], [audit], [tracing] -------------------------------------------------- */

#define S struct mg_tool_limit_config
static const struct mg_field tool_limit_fields[] = {
	STR(S, name, "name", NULL, MG_FF_REQUIRED, "\"generate_report\"",
	    "Tool name or glob (`*`) the limit applies to."),
	DBL(S, requests_per_second, "requests_per_second", "1", 0.001, 1e6,
	    "Sustained calls per second per identity for these tools."),
	INT(S, burst_size, "burst_size", "1", 1, 1000000,
	    "Calls at once above the sustained rate."),
};
#undef S
static const struct mg_section tool_limit_section =
    SECTION("rate_limit.tools", struct mg_tool_limit_config, tool_limit_fields, SIZE_MAX,
            "Extra limits on expensive tools, per identity (first matching entry applies).", NULL);

#define S struct mg_rate_limit_config
static const struct mg_field rate_limit_fields[] = {
	BOOL(S, enabled, "enabled", "true", "Rate-limit every identity."),
	DBL(S, requests_per_second, "requests_per_second", "100", 0.001, 1e6,
	    "Sustained requests per second per identity."),
	INT(S, burst_size, "burst_size", "50", 1, 1000000,
	    "Requests an identity may send at once above the sustained rate."),
	DBL(S, ip_requests_per_second, "ip_requests_per_second", "200", 0, 1e6,
	    "Requests per second per client address, checked before authentication (stops "
	    "floods of bad credentials cheaply); 0 turns it off."),
	INT(S, ip_burst_size, "ip_burst_size", "400", 1, 1000000,
	    "Requests a client address may send at once above that rate."),
	STR(S, redis_url, "redis_url", NULL, MG_FF_SECRET, "\"redis://127.0.0.1:6379/0\"",
	    "Share limits between instances through Redis (redis:// or rediss:// or "
	    "unix:///path)."),
	INT(S, redis_timeout_ms, "redis_timeout_ms", "50", 1, 10000,
	    "Milliseconds a Redis check may take before the in-memory limiter answers."),
	INT(S, expected_instances, "expected_instances", "1", 1, 1000,
	    "Instances sharing Redis; each allows its share when Redis is down."),
	INT(S, idle_eviction_secs, "idle_eviction_secs", "3600", 1, 604800,
	    "Seconds an idle identity's limiter state is kept."),
	INT(S, max_entries, "max_entries", "100000", 16, 100000000,
	    "Identities tracked in memory at most."),
	TABLES(S, tools, n_tools, "tools", tool_limit_section),
};
#undef S
static const struct mg_section rate_limit_section =
    SECTION("rate_limit", struct mg_rate_limit_config, rate_limit_fields, SIZE_MAX,
            "Per-identity rate limiting (GCRA).", mg_check_rate_limit);

#define S struct mg_audit_config
static const struct mg_field audit_fields[] = {
	BOOL(S, enabled, "enabled", "true", "Record an audit event for every MCP request."),
	BOOL(S, stdout_enabled, "stdout", "true",
	     "Write audit events to standard output (JSON lines; diagnostics go to stderr)."),
	STR(S, file, "file", NULL, 0, "\"/var/log/mcp-guard/audit.jsonl\"",
	    "Append audit events (JSON lines) to this file."),
	STR(S, export_url, "export_url", NULL, MG_FF_URL, "\"https://siem.example.com/ingest\"",
	    "POST batches of audit events to this URL."),
	INT(S, export_batch_size, "export_batch_size", "100", 1, 10000, "Events per export batch."),
	INT(S, export_interval_secs, "export_interval_secs", "30", 1, 3600,
	    "Seconds between exports of a partial batch."),
	SECRET_MAP(S, export_headers, "export_headers", "{ Authorization = \"Bearer <token>\" }",
	           "Extra headers sent with each export (a token for the collector: "
	           "export_headers_env = { Authorization = \"VAR\" } takes the value from the "
	           "environment, export_headers_file from a file)."),
	ENUM(S, export_format, "export_format", "ndjson", audit_formats,
	     "Body of an export: ndjson (one record per line), json_array (Datadog logs "
	     "intake), splunk_hec (HEC event envelopes), elasticsearch_bulk (_bulk create "
	     "actions)."),
	ENUM(S, export_compression, "export_compression", "none", compressions,
	     "Compress export bodies: gzip (Content-Encoding: gzip; Splunk HEC, Datadog, "
	     "Elasticsearch and most collectors take it) cuts the bytes sent several times "
	     "for some CPU on the writer thread."),
	INT(S, export_timeout_secs, "export_timeout_secs", "10", 1, 300,
	    "Seconds one export request may take."),
	BOOL(S, allow_private_networks, "allow_private_networks", "false",
	     "Let export_url reach loopback and private addresses (a collector inside the "
	     "network). Link-local and cloud metadata addresses stay refused."),
	STR(S, spool_dir, "spool_dir", NULL, 0, "\"/var/lib/mcp-guard/audit-spool\"",
	    "Directory for batches the export could not deliver; they are re-sent in order "
	    "before new ones once the collector answers again."),
	INT(S, spool_max_bytes, "spool_max_bytes", "104857600", 4096, 1099511627776,
	    "Bytes the spool may hold; a batch beyond it is dropped, counted and logged."),
	STR(S, splunk_source, "splunk_source", "mcp-guard", 0, NULL,
	    "`source` of Splunk HEC events (export_format = \"splunk_hec\")."),
	STR(S, splunk_sourcetype, "splunk_sourcetype", "mcp-guard:audit", 0, NULL,
	    "`sourcetype` of Splunk HEC events."),
	STR(S, splunk_index, "splunk_index", NULL, 0, "\"mcp\"",
	    "`index` of Splunk HEC events; absent: the token's default index."),
	INT(S, queue_size, "queue_size", "10000", 16, 10000000,
	    "Events buffered for the writer thread; beyond it the overflow policy applies."),
	ENUM(S, overflow, "overflow", "drop", audit_overflows,
	     "When the queue is full: drop the event (counted and logged), or block the "
	     "request for at most block_timeout_ms and then drop it."),
	INT(S, block_timeout_ms, "block_timeout_ms", "100", 1, 10000,
	    "Milliseconds a request may wait for room in the queue (overflow = \"block\")."),
	ENUM(S, fsync, "fsync", "batch", audit_fsyncs,
	     "When the file is synced to disk: never (the OS decides), batch (after each run "
	     "of records) or always (after every record)."),
	INT(S, fsync_interval_ms, "fsync_interval_ms", "1000", 0, 60000,
	    "With fsync = \"batch\": at most one sync per this many milliseconds, so records "
	    "reach the disk at the latest this long after they were written (a crash of the "
	    "gateway alone loses nothing written); 0: a sync after every run of records."),
	BOOL(S, hash_chain, "hash_chain", "false",
	     "Chain records with SHA-256 (seq, prev, hash members) so that `mcp-guard audit "
	     "verify` finds any edited, removed or reordered record."),
	INT(S, head_log_interval_secs, "head_log_interval_secs", "300", 0, 86400,
	    "Seconds between log lines giving the chain head (seq and hash) to anchor "
	    "elsewhere; 0: only at shutdown."),
	INT(S, auth_success_interval_secs, "auth_success_interval_secs", "60", 0, 86400,
	    "Record an auth_success event for an identity, provider and client address at "
	    "most once in this many seconds (failures are always recorded, and every "
	    "tool_call names its identity); 0: one per request."),
	BOOL(S, include_arguments, "include_arguments", "false",
	     "Record tool arguments in tool_call events (after redaction)."),
	BOOL(S, include_results, "include_results", "false",
	     "Record tool results in tool_call_result events (after redaction)."),
	STRS(S, redact_paths, "redact_paths", 0, "[\"$.password\", \"$..token\"]",
	     "JSON paths, rooted at the recorded arguments or result, whose values are "
	     "replaced by \"[REDACTED]\"."),
	STRS(S, redact_patterns, "redact_patterns", 0, "[\"sk-[A-Za-z0-9]{20,}\"]",
	     "POSIX extended regular expressions; matches inside recorded string values are "
	     "replaced by \"[REDACTED]\"."),
};
#undef S
static const struct mg_section audit_section = SECTION(
    "audit", struct mg_audit_config, audit_fields, SIZE_MAX, "Audit events.", mg_check_audit);

#define S struct mg_tracing_config
static const struct mg_field tracing_fields[] = {
	BOOL(S, enabled, "enabled", "false", "Export OpenTelemetry traces."),
	STR(S, service_name, "service_name", "mcp-guard", 0, NULL,
	    "service.name resource attribute."),
	STR(S, otlp_endpoint, "otlp_endpoint", NULL, MG_FF_URL, "\"http://127.0.0.1:4318\"",
	    "OTLP/HTTP collector base URL."),
	ENUM(S, otlp_protocol, "otlp_protocol", "http/protobuf", otlp_protocols,
	     "Encoding of the exported spans: binary protobuf (application/x-protobuf, what "
	     "every OTLP receiver takes) or JSON (application/json)."),
	ENUM(S, otlp_compression, "otlp_compression", "none", compressions,
	     "Compress exported spans: gzip (Content-Encoding: gzip, which every OTLP/HTTP "
	     "receiver takes) for collectors across a metered or slow link."),
	SECRET_MAP(S, otlp_headers, "otlp_headers", "{ x-honeycomb-team = \"<API key>\" }",
	           "Extra headers sent with each export, e.g. a SaaS backend's API key "
	           "(otlp_headers_env = { x-honeycomb-team = \"VAR\" } takes the value from "
	           "the environment, otlp_headers_file from a file)."),
	DBL(S, sample_rate, "sample_rate", "1.0", 0.0, 1.0, "Fraction of traces sampled (0 to 1)."),
	BOOL(S, propagate_context, "propagate_context", "true",
	     "Accept the client's W3C trace context (params._meta, else the traceparent "
	     "header) as the parent, and pass the context on to the upstream in "
	     "params._meta."),
	BOOL(S, allow_private_networks, "allow_private_networks", "false",
	     "Let otlp_endpoint be a loopback or private address (a collector on the same "
	     "host or network)."),
	INT(S, queue_size, "queue_size", "16384", 64, 1000000,
	    "Spans waiting for export at most; beyond it spans are dropped and counted "
	    "(mcp_guard_trace_spans_dropped_total)."),
	INT(S, export_batch_size, "export_batch_size", "512", 1, 10000,
	    "Spans per export request at most; an export starts as soon as this many wait."),
	INT(S, export_interval_ms, "export_interval_ms", "1000", 10, 60000,
	    "Milliseconds a span waits at most for its batch to fill before it is exported."),
};
#undef S
static const struct mg_section tracing_section =
    SECTION("tracing", struct mg_tracing_config, tracing_fields, SIZE_MAX, "OpenTelemetry tracing.",
            mg_check_tracing);

#define S struct mg_metrics_config
static const struct mg_field metrics_fields[] = {
	BOOL(S, enabled, "enabled", "true", "Serve Prometheus metrics (text format 0.0.4)."),
	STR(S, path, "path", "/metrics", MG_FF_PATH, NULL,
	    "Path of the metrics endpoint, on the main listener and on `listen`."),
	STR(S, listen, "listen", NULL, 0, "\"127.0.0.1:9464\"",
	    "host:port of a separate admin listener (plain HTTP) serving only the metrics path, "
	    "/health, /live and /ready."),
	BOOL(S, require_auth, "require_auth", "true",
	     "When authentication is configured, scraping needs the same credentials as the MCP "
	     "endpoint (on both listeners); set false for a scraper on a private admin address."),
};
#undef S
static const struct mg_section metrics_section =
    SECTION("metrics", struct mg_metrics_config, metrics_fields, SIZE_MAX, "Prometheus metrics.",
            mg_check_metrics);

/* ---- [upstream] ------------------------------------------------------------------------ */

#define S struct mg_identity_headers_config
static const struct mg_field identity_headers_fields[] = {
	STR(S, identity, "identity", NULL, MG_FF_REQUIRED, "\"api_key:alice\"",
	    "Provider-qualified identity: api_key:<key id>, jwt:<subject claim>, mtls:<certificate "
	    "name>."),
	SECRET_MAP(S, headers, "headers", "{ Authorization = \"Bearer <alice's upstream token>\" }",
	           "Headers sent upstream with this identity's requests, replacing the upstream's "
	           "own headers of the same name; values may come from headers_env / "
	           "headers_file."),
};
#undef S
static const struct mg_section identity_headers_section =
    SECTION("upstream.identity_headers", struct mg_identity_headers_config, identity_headers_fields,
            SIZE_MAX,
            "Per-identity upstream credentials (http, sse): each user reaches the server as "
            "themselves.",
            NULL);

#define S struct mg_upstream_config
#define UPSTREAM_TRANSPORT_FIELDS                                                                  \
	ENUM(S, transport, "transport", "stdio", transports,                                       \
	     "stdio: a child process; http: a Streamable HTTP server; sse: a legacy HTTP+SSE "     \
	     "server."),                                                                           \
	    STR(S, command, "command", NULL, MG_FF_TEMPLATE, "\"npx\"",                            \
	        "Program to start (stdio)."),                                                      \
	    STRS(S, args, "args", MG_FF_TEMPLATE,                                                  \
	         "[\"-y\", \"@modelcontextprotocol/server-everything\"]",                          \
	         "Arguments of the program (stdio)."),                                             \
	    MAP(S, env, "env", "{ LOG_LEVEL = \"info\" }",                                         \
	        "Environment of the program (stdio); the gateway's own is not inherited except "   \
	        "PATH, HOME, LANG and TZ."),                                                       \
	    STR(S, cwd, "cwd", NULL, 0, "\"/srv/mcp\"",                                            \
	        "Working directory of the program (stdio)."),                                      \
	    STR(S, url, "url", NULL, MG_FF_URL, "\"http://127.0.0.1:8080/mcp\"",                   \
	        "Upstream endpoint (http, sse)."),                                                 \
	    SECRET_MAP(S, headers, "headers", "{ \"X-Api-Key\" = \"<upstream key>\" }",            \
	               "Headers sent with every request to the upstream (http, sse); values "      \
	               "may come from headers_env / headers_file."),                               \
	    TABLES(S, identity_headers, n_identity_headers, "identity_headers",                    \
	           identity_headers_section),                                                      \
	    BOOL(S, allow_private_networks, "allow_private_networks", "false",                     \
	         "Let url reach loopback and private addresses (http, sse). Link-local and cloud " \
	         "metadata addresses stay refused."),                                              \
	    INT(S, connect_timeout_secs, "connect_timeout_secs", "10", 1, 300,                     \
	        "Seconds to establish a connection to the upstream (http, sse)."),                 \
	    BOOL(S, http2_prior_knowledge, "http2_prior_knowledge", "false",                       \
	         "Speak HTTP/2 to an http:// url without negotiation (h2c). Over https, HTTP/2 "   \
	         "is used when the server offers it."),                                            \
	    ENUM(S, mode, "mode", "shared", stdio_modes,                                           \
	         "shared: one upstream conversation (process or HTTP session) for all client "     \
	         "sessions; per_session: one per client session (full fidelity: sampling, "        \
	         "elicitation, roots, logging)."),                                                 \
	    ENUM(S, protocol, "protocol", "auto", protocols,                                       \
	         "auto: probe with server/discover first, as the spec's stdio rules say, and "     \
	         "speak 2026-07-28 to servers that support it; legacy: always initialize."),       \
	    INT(S, max_processes, "max_processes", "32", 1, 10000,                                 \
	        "Processes at most in per_session mode."),                                         \
	    INT(S, idle_timeout_secs, "idle_timeout_secs", "300", 1, 604800,                       \
	        "Seconds an idle per-session process is kept."),                                   \
	    { .name = "request_timeout_secs",                                                      \
	      .type = MG_F_INT,                                                                    \
	      .off = offsetof(S, request_timeout_secs),                                            \
	      .min = 1,                                                                            \
	      .max = 86400,                                                                        \
	      .example = "60",                                                                     \
	      .help = "Per-upstream request timeout; defaults to "                                 \
		      "server.request_timeout_secs." },                                            \
	    INT(S, max_message_bytes, "max_message_bytes", "16777216", 1024, 1073741824,           \
	        "Largest message accepted from the upstream."),                                    \
	    INT(S, restart_max_backoff_secs, "restart_max_backoff_secs", "30", 1, 3600,            \
	        "Longest wait between restarts of a crashed process."),                            \
	    ENUM(S, tool_pinning, "tool_pinning", "off", tool_pinnings,                            \
	         "Pin each tool's definition (SHA-256 of its canonical JSON) the first time it "   \
	         "is listed; warn: log a changed definition; block: also hide the tool until "     \
	         "`mcp-guard tools approve`. Needs upstream.pins_file.")

static const struct mg_field server_entry_fields[] = {
	STR(S, name, "name", NULL, MG_FF_REQUIRED, "\"files\"",
	    "Unique name (logs, metrics, health, federated tool prefix)."),
	STR(S, path_prefix, "path_prefix", NULL, MG_FF_REQUIRED | MG_FF_PATH, "\"/files\"",
	    "The server's MCP endpoint: this path and every path below it (longest prefix "
	    "wins); the server is also reachable at <server.mcp_path>/<name>."),
	BOOL(S, strip_prefix, "strip_prefix", "false",
	     "Accepted for configurations written for earlier gateways; has no effect: an "
	     "upstream is always called at its own url."),
	BOOL(S, federate, "federate", "true",
	     "With upstream.federation: this server's tools, prompts and resources are part of "
	     "the federated endpoint (it keeps its own endpoint either way)."),
	BOOL(S, required, "required", "true",
	     "The gateway is ready (/ready) only when this upstream is; false: its failure "
	     "degrades /health but does not take the gateway out of rotation."),
	UPSTREAM_TRANSPORT_FIELDS,
};
static const struct mg_section server_entry_section =
    SECTION("upstream.servers", struct mg_upstream_config, server_entry_fields, SIZE_MAX,
            "Several upstreams, routed by path prefix.", mg_check_upstream_entry);
#undef S

/* The single-upstream form: the transport fields directly in [upstream],
 * plus the `servers` array. They decode into struct mg_upstream_section,
 * whose first member is the single upstream. */
#define S struct mg_upstream_config
static const struct mg_field upstream_fields[] = {
	UPSTREAM_TRANSPORT_FIELDS,
	{ .name = "servers",
	  .type = MG_F_TABLE_ARRAY,
	  .off = offsetof(struct mg_upstream_section, servers),
	  .count_off = offsetof(struct mg_upstream_section, n_servers),
	  .sub = &server_entry_section },
	{ .name = "cursor_secret",
	  .type = MG_F_STRING,
	  .off = offsetof(struct mg_upstream_section, cursor_secret),
	  .flags = MG_FF_SECRET,
	  .example = "\"<at least 32 bytes>\"",
	  .help = "Key that seals the federated endpoint's list cursors (or cursor_secret_env / "
	          "cursor_secret_file). Unset: a random key per process, so a client that pages "
	          "must come back to the same instance; instances behind one load balancer need "
	          "the same secret." },
	{ .name = "pins_file",
	  .type = MG_F_STRING,
	  .off = offsetof(struct mg_upstream_section, pins_file),
	  .example = "\"/var/lib/mcp-guard/pins.json\"",
	  .help = "State file of tool pinning (JSON, written 0600; created when missing). "
	          "Required when a server sets tool_pinning = \"warn\" or \"block\"." },
	{ .name = "federation",
	  .type = MG_F_BOOL,
	  .off = offsetof(struct mg_upstream_section, federation),
	  .def = "false",
	  .help = "Serve every [[upstream.servers]] entry (federate = true) as one endpoint at "
	          "server.mcp_path: tools and prompts named <server><tool_separator><name>, "
	          "lists merged with paging, calls routed to their server." },
	{ .name = "tool_separator",
	  .type = MG_F_STRING,
	  .off = offsetof(struct mg_upstream_section, tool_separator),
	  .def = "__",
	  .example = "\"__\"",
	  .help = "Between a server's name and its tool or prompt names on the federated "
	          "endpoint (1 to 8 of A-Z a-z 0-9 _ . -); server names may not contain it." },
};
#undef S
_Static_assert(offsetof(struct mg_upstream_section, single) == 0,
               "upstream fields decode relative to the single upstream");
static const struct mg_section upstream_section =
    SECTION("upstream", struct mg_upstream_section, upstream_fields, SIZE_MAX,
            "The MCP server(s) behind the gateway.", mg_check_upstream);

/* ---- root ------------------------------------------------------------------------------ */

#define S struct mg_config
static const struct mg_field root_fields[] = {
	TABLE(S, server, "server", server_section),
	TABLE(S, auth, "auth", auth_section),
	TABLE(S, rate_limit, "rate_limit", rate_limit_section),
	TABLE(S, audit, "audit", audit_section),
	TABLE(S, tracing, "tracing", tracing_section),
	TABLE(S, metrics, "metrics", metrics_section),
	TABLE(S, upstream, "upstream", upstream_section),
};
#undef S
const struct mg_section mg_schema_root =
    SECTION("", struct mg_config, root_fields, SIZE_MAX, "", mg_check_root);

const struct mg_field *mg_schema_field(const struct mg_section *sec, const char *name)
{
	for (size_t i = 0; i < sec->n_fields; i++) {
		if (strcmp(sec->fields[i].name, name) == 0)
			return &sec->fields[i];
	}
	return NULL;
}

const char *mg_transport_name(int64_t t)
{
	return t >= 0 && t < 3 ? transports[t] : "?";
}

const char *mg_stdio_mode_name(int64_t m)
{
	return m >= 0 && m < 2 ? stdio_modes[m] : "?";
}
