/*
 * config.h - the gateway's configuration: `struct mg_config` and loading it.
 *
 * A configuration file (TOML or YAML) is parsed into a tree (tree.h), the
 * environment overrides are applied to that tree, and the schema table
 * (schema.h) decodes it into the structs below, filling defaults and
 * checking types, ranges, enums, URLs, unknown keys and cross-field rules.
 * Every problem found is reported with file:line:column and key path; all
 * of them are reported, not only the first.
 *
 * Ownership: a loaded `struct mg_config` owns every string and array in it;
 * release it with mg_config_free(). Optional sections start with
 * `bool present` (true when the section was written in the file).
 */
#ifndef MG_CONFIG_CONFIG_H
#define MG_CONFIG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A list of strings. `set` distinguishes "absent" from "present but empty"
 * (for allowed_tools: absent = everything allowed, empty = nothing). */
struct mg_strv {
	char **v;
	size_t n;
	bool set;
};

/* String → string map, in file order. */
struct mg_kv {
	char *key;
	char *value;
};
struct mg_kvv {
	struct mg_kv *v;
	size_t n;
};

/* String → list of strings map (scope → tools). */
struct mg_kstrv {
	char *key;
	struct mg_strv value;
};
struct mg_kstrvv {
	struct mg_kstrv *v;
	size_t n;
};

struct mg_tls_config {
	bool enabled;
	char *cert_path;
	char *key_path;
	char *client_ca_path;
};

struct mg_server_config {
	char *host;
	int64_t port;
	char *mcp_path;
	char *sse_path;
	char *messages_path;
	bool legacy_sse;
	char *public_url;
	struct mg_strv allowed_origins;
	int64_t max_connections;
	int64_t max_sessions;
	int64_t max_header_bytes;
	int64_t max_body_bytes;
	int64_t max_json_depth;
	int64_t idle_timeout_secs;
	int64_t request_timeout_secs;
	int64_t session_idle_timeout_secs;
	int64_t sse_keepalive_secs;
	int64_t sse_replay_events;
	int64_t shutdown_grace_secs;
	int64_t log_level;  /* enum mg_log_level order: error, warn, info, debug */
	int64_t log_format; /* enum mg_log_format order: text, json */
	struct mg_tls_config tls;
};

struct mg_api_key_config {
	char *id;
	char *key_hash;
	struct mg_strv allowed_tools;
	struct mg_strv allowed_resources;
	struct mg_strv allowed_prompts;
	int64_t rate_limit; /* requests per second; 0 = the global default */
};

enum mg_jwt_mode { MG_JWT_SIMPLE, MG_JWT_JWKS };

struct mg_jwt_config {
	bool present;
	int64_t mode; /* enum mg_jwt_mode */
	char *secret;
	char *jwks_url;
	bool allow_private_networks;
	struct mg_strv algorithms;
	int64_t cache_duration_secs;
	char *issuer;
	struct mg_strv audience;
	char *user_id_claim;
	char *scopes_claim;
	int64_t leeway_secs;
	struct mg_kstrvv scope_tool_mapping;
	struct mg_strv required_scopes;
	char *rate_limit_claim;
};

enum mg_oauth_provider { MG_OAUTH_GITHUB, MG_OAUTH_GOOGLE, MG_OAUTH_OKTA, MG_OAUTH_CUSTOM };

struct mg_oauth_config {
	bool present;
	int64_t provider; /* enum mg_oauth_provider */
	char *client_id;
	char *client_secret;
	char *redirect_uri;
	struct mg_strv scopes;
	char *authorization_url;
	char *token_url;
	char *introspection_url;
	char *userinfo_url;
	char *user_id_claim;
	struct mg_kstrvv scope_tool_mapping;
	char *issuer;                /* okta: the authorization server; fills the URLs */
	bool allow_private_networks; /* the provider's URLs may reach private addresses */
	struct mg_strv audience;     /* accepted introspection `aud` values; empty: unchecked */
	int64_t cache_duration_secs; /* validated tokens are cached this long (never past exp) */
	char *state_secret;          /* seals the login `state`; NULL: random per process */
	bool authorization_server;   /* the gateway is the authorization server of MCP clients */
	char *ca_file;               /* PEM CA bundle for this section's HTTPS fetches */
	char *signing_key_file;      /* facade: Ed25519 PEM private key of its tokens */
	char *previous_signing_key_file; /* facade: a retired key, still accepted */
};

enum mg_mtls_identity { MG_MTLS_CN, MG_MTLS_SAN_DNS, MG_MTLS_SAN_EMAIL };

struct mg_mtls_config {
	bool present;
	bool enabled;
	int64_t identity_source; /* enum mg_mtls_identity */
	struct mg_strv allowed_tools;
	int64_t rate_limit;
	struct mg_strv trusted_proxies;
};

struct mg_auth_config {
	struct mg_api_key_config *api_keys;
	size_t n_api_keys;
	struct mg_jwt_config jwt;
	struct mg_oauth_config oauth;
	struct mg_mtls_config mtls;
};

/* A per-tool limit: every identity may call tools matching `name` at this rate. */
struct mg_tool_limit_config {
	char *name; /* tool name or glob */
	double requests_per_second;
	int64_t burst_size;
};

struct mg_rate_limit_config {
	bool enabled;
	double requests_per_second;
	int64_t burst_size;
	double ip_requests_per_second; /* before authentication; 0 = off */
	int64_t ip_burst_size;
	char *redis_url;
	int64_t redis_timeout_ms;
	int64_t expected_instances;
	int64_t idle_eviction_secs;
	int64_t max_entries;
	struct mg_tool_limit_config *tools;
	size_t n_tools;
};

struct mg_audit_config {
	bool enabled;
	bool stdout_enabled;
	char *file;
	char *export_url;
	int64_t export_batch_size;
	int64_t export_interval_secs;
	struct mg_kvv export_headers;
	int64_t queue_size;
	int64_t overflow; /* 0 drop, 1 block */
	int64_t block_timeout_ms;
	int64_t fsync;             /* 0 never, 1 batch, 2 always */
	int64_t fsync_interval_ms; /* batch: at most one sync per this long; 0: every run */
	bool hash_chain;
	int64_t head_log_interval_secs;
	int64_t auth_success_interval_secs; /* 0: an auth_success record per request */
	bool include_arguments;
	bool include_results;
	struct mg_strv redact_paths;
	struct mg_strv redact_patterns;
	int64_t export_format;      /* 0 ndjson, 1 json_array, 2 splunk_hec, 3 elasticsearch_bulk */
	int64_t export_compression; /* enum mg_compression */
	int64_t export_timeout_secs;
	bool allow_private_networks;
	char *spool_dir;
	int64_t spool_max_bytes;
	char *splunk_source;
	char *splunk_sourcetype;
	char *splunk_index;
};

struct mg_tracing_config {
	bool enabled;
	char *service_name;
	char *otlp_endpoint;
	double sample_rate;
	bool propagate_context;
	bool allow_private_networks;
	int64_t otlp_protocol;      /* enum mg_otlp_protocol */
	int64_t otlp_compression;   /* enum mg_compression */
	struct mg_kvv otlp_headers; /* sent with every export (an API key) */
	int64_t queue_size;         /* spans waiting for export at most */
	int64_t export_batch_size;  /* spans per export request at most */
	int64_t export_interval_ms; /* the longest a span waits for a batch to fill */
};

enum mg_otlp_protocol { MG_OTLP_PROTOBUF, MG_OTLP_JSON };

/* export_compression, otlp_compression */
enum mg_compression { MG_COMPRESS_NONE, MG_COMPRESS_GZIP };

struct mg_metrics_config {
	bool enabled;
	char *path;   /* on the main listener and on `listen` */
	char *listen; /* "host:port" of a separate admin listener, or NULL */
	bool require_auth;
};

enum mg_transport { MG_TRANSPORT_STDIO, MG_TRANSPORT_HTTP, MG_TRANSPORT_SSE };
enum mg_upstream_protocol { MG_PROTOCOL_AUTO, MG_PROTOCOL_LEGACY };
enum mg_stdio_mode { MG_STDIO_SHARED, MG_STDIO_PER_SESSION };
/* What a changed tool definition does (gateway/pins.h). */
enum mg_tool_pinning { MG_PINNING_OFF, MG_PINNING_WARN, MG_PINNING_BLOCK };

/* Headers sent to an upstream for one identity's requests. */
struct mg_identity_headers_config {
	char *identity; /* provider-qualified: "api_key:alice", "jwt:<sub>", "mtls:<name>" */
	struct mg_kvv headers;
};

/* One upstream MCP server. The single `[upstream]` form and each
 * `[[upstream.servers]]` entry decode into this. */
struct mg_upstream_config {
	char *name;
	char *path_prefix;
	bool strip_prefix;
	bool required;     /* [[upstream.servers]]: /ready waits for it (the single form: always) */
	bool federate;     /* [[upstream.servers]]: part of the federated endpoint */
	int64_t transport; /* enum mg_transport */
	char *command;
	struct mg_strv args;
	struct mg_kvv env;
	char *cwd;
	char *url;
	struct mg_kvv headers;
	struct mg_identity_headers_config *identity_headers;
	size_t n_identity_headers;
	bool allow_private_networks;
	int64_t connect_timeout_secs;
	bool http2_prior_knowledge;
	int64_t mode;     /* enum mg_stdio_mode */
	int64_t protocol; /* enum mg_upstream_protocol */
	int64_t max_processes;
	int64_t idle_timeout_secs;
	int64_t request_timeout_secs;
	int64_t max_message_bytes;
	int64_t restart_max_backoff_secs;
	int64_t tool_pinning; /* enum mg_tool_pinning */
};

struct mg_upstream_section {
	struct mg_upstream_config single; /* valid when n_servers == 0 */
	bool single_present;              /* transport fields written in [upstream] */
	struct mg_upstream_config *servers;
	size_t n_servers;
	char *cursor_secret;  /* seals federated list cursors; NULL: random per process */
	char *pins_file;      /* tool pinning state (JSON); required when a server pins */
	bool federation;      /* server.mcp_path aggregates the servers (federate = true) */
	char *tool_separator; /* between a server's name and its tool or prompt names */
};

struct mg_config {
	char *source; /* the file it was loaded from */
	struct mg_server_config server;
	struct mg_auth_config auth;
	struct mg_rate_limit_config rate_limit;
	struct mg_audit_config audit;
	struct mg_tracing_config tracing;
	struct mg_metrics_config metrics;
	struct mg_upstream_section upstream;
};

/* One problem found while loading. */
struct mg_diag_entry {
	char *file;
	uint32_t line, col;
	char *path; /* key path, e.g. "server.port" (may be empty) */
	char *msg;
	bool warning;
};

struct mg_diag {
	struct mg_diag_entry *v;
	size_t n;
	size_t errors;
};

/* Releases the entries. */
void mg_diag_free(struct mg_diag *d);

/* Writes every entry as "file:line:col: error: path: message" lines. */
void mg_diag_print(const struct mg_diag *d, void *file /* FILE* */);

enum mg_config_format { MG_CONFIG_AUTO, MG_CONFIG_TOML, MG_CONFIG_YAML };

/* Loads and validates `path` (format from the extension unless given),
 * applying MCP_GUARD_* environment overrides from `envp` (NULL: none).
 * Returns a config (caller frees), or NULL when any error was found; every
 * problem (errors and warnings) is appended to `diag`. */
struct mg_config *mg_config_load(const char *path, enum mg_config_format format, char *const *envp,
                                 struct mg_diag *diag);

/* Same from memory; `name` is used in messages. */
struct mg_config *mg_config_load_buffer(const char *text, size_t len, const char *name,
                                        enum mg_config_format format, char *const *envp,
                                        struct mg_diag *diag);

/* Releases everything the config owns. NULL is fine. */
void mg_config_free(struct mg_config *cfg);

/* The upstreams as a list: the single [upstream] (named "default", prefix
 * "/") or the [[upstream.servers]] entries. */
size_t mg_config_upstreams(const struct mg_config *cfg, const struct mg_upstream_config **out);

/* Names of enum values, for messages and output. */
const char *mg_transport_name(int64_t t);
const char *mg_stdio_mode_name(int64_t m);

#endif
