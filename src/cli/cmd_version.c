/*
 * cmd_version.c - `version`: what was built, from what, with what.
 */
#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <yaml.h>

#include "build-info.h"
#include "cli/cli.h"
#include "http/client.h"
#include "util/gzip.h"

/* What this build can do. Keep in step with the code as features land. */
static const char *const features[] = {
	"config:toml",
	"config:yaml",
	"config:env-overrides",
	"mcp:2025-03-26",
	"mcp:2025-06-18",
	"mcp:2025-11-25",
	"mcp:2026-07-28",
	"mcp:era-bridging",
	"client:streamable-http",
	"client:http-sse-2024-11-05",
	"upstream:stdio",
	"upstream:streamable-http",
	"upstream:http-sse",
	"upstream:per-session",
	"upstream:identity-credentials",
	"ssrf:connect-time",
	"auth:api-key",
	"auth:jwt-hmac",
	"auth:jwt-jwks",
	"auth:mtls",
	"auth:mtls-forwarded",
	"auth:oauth-introspection",
	"auth:oauth-login",
	"auth:oauth-authorization-server",
	"auth:protected-resource-metadata",
	"tls",
	"reload:sighup",
	"systemd:notify",
	"authz:tools-resources-prompts",
	"routing:path",
	"routing:federation",
	"tools:pinning",
	"ratelimit:gcra",
	"ratelimit:redis",
	"audit:stdout",
	"audit:file",
	"audit:http-export",
	"audit:hash-chain",
	"audit:redaction",
	"audit:spool",
	"metrics:prometheus",
	"tracing:otlp-http-protobuf",
	"tracing:otlp-http-json",
	"tracing:w3c-trace-context",
	"export:gzip",
};

/* "<lib> <version> (loaded on demand)", or why it cannot be loaded: the
 * libraries the gateway dlopen()s when a configuration needs them. */
static void on_demand_text(char *out, size_t size, const char *lib, const char *version,
                           const char *err)
{
	if (version)
		snprintf(out, size, "%s %s (loaded on demand)", lib, version);
	else
		snprintf(out, size, "%s unavailable (%s)", lib, err);
}

int mg_cmd_version(struct mg_cli *cli)
{
	char hiredis[32];
	snprintf(hiredis, sizeof hiredis, "%d.%d.%d", HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH);
	/* libcurl (http/client.c) and zlib (util/gzip.c: compressed exports)
	 * are loaded on demand; load them here to name the versions the
	 * gateway would use, and say so when one cannot be. */
	char cerr[300], zerr[300], curl_text[340], zlib_text[340];
	const char *curl = mg_fetch_curl_version(cerr, sizeof cerr);
	const char *zlib = mg_gzip_version(zerr, sizeof zerr);
	on_demand_text(curl_text, sizeof curl_text, "libcurl", curl, cerr);
	on_demand_text(zlib_text, sizeof zlib_text, "zlib", zlib, zerr);
	const char *libevent = event_get_version();
	const char *openssl = OpenSSL_version(OPENSSL_VERSION);
	const char *yaml = yaml_get_version_string();
	size_t nf = sizeof features / sizeof features[0];

	if (mg_cli_flag(cli, "json")) {
		json_t *f = json_array();
		for (size_t i = 0; i < nf; i++)
			json_array_append_new(f, json_string(features[i]));
		json_t *o =
		    json_pack("{s:s,s:s,s:s,s:s,s:{s:s,s:s,s:s?,s:s,s:s,s:s,s:s?},s:o}", "version",
		              MG_VERSION, "commit", MG_GIT_COMMIT, "built", MG_BUILD_DATE,
		              "compiler", MG_COMPILER, "libraries", "libevent", libevent, "openssl",
		              openssl, "libcurl", curl, "jansson", JANSSON_VERSION, "hiredis",
		              hiredis, "libyaml", yaml, "zlib", zlib, "features", f);
		char *s = o ? json_dumps(o, JSON_INDENT(2)) : NULL;
		if (s)
			printf("%s\n", s);
		free(s);
		json_decref(o);
		return s ? MG_EXIT_OK : MG_EXIT_RUNTIME;
	}
	printf("mcp-guard %s\n", MG_VERSION);
	printf("commit:    %s\n", MG_GIT_COMMIT);
	printf("built:     %s\n", MG_BUILD_DATE);
	printf("compiler:  %s\n", MG_COMPILER);
	printf("libraries: libevent %s, %s, %s, jansson %s, hiredis %s, libyaml %s, %s\n", libevent,
	       openssl, curl_text, JANSSON_VERSION, hiredis, yaml, zlib_text);
	printf("features: ");
	for (size_t i = 0; i < nf; i++)
		printf(" %s", features[i]);
	printf("\n");
	return MG_EXIT_OK;
}
