/*
 * test_config.c - schema decoding, validation messages, templates,
 * environment overrides and secrets.
 */
#include "support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/checks.h"
#include "config/config.h"
#include "config/schema.h"

static const char *minimal = "[upstream]\ncommand = \"node\"\n";

static struct mg_config *load(const char *text, enum mg_config_format fmt, char *const *envp,
                              struct mg_diag *diag)
{
	return mg_config_load_buffer(text, strlen(text),
	                             fmt == MG_CONFIG_YAML ? "t.yaml" : "t.toml", fmt, envp, diag);
}

/* Asserts that some error is at line:col and its message contains `needle`. */
static void assert_diag(const struct mg_diag *d, uint32_t line, uint32_t col, const char *path,
                        const char *needle)
{
	for (size_t i = 0; i < d->n; i++) {
		const struct mg_diag_entry *e = &d->v[i];
		if (e->line == line && e->col == col && strcmp(e->path, path) == 0 &&
		    strstr(e->msg, needle))
			return;
	}
	mg_diag_print(d, stderr);
	fail_msg("no diagnostic at %u:%u %s containing \"%s\"", line, col, path, needle);
}

static void test_defaults(void **state)
{
	(void)state;
	struct mg_diag d = { 0 };
	struct mg_config *c = load(minimal, MG_CONFIG_TOML, NULL, &d);
	assert_non_null(c);
	assert_int_equal(d.errors, 0);
	assert_string_equal(c->server.host, "127.0.0.1");
	assert_int_equal(c->server.port, 3000);
	assert_string_equal(c->server.mcp_path, "/mcp");
	assert_true(c->rate_limit.enabled);
	assert_true(c->rate_limit.requests_per_second == 100.0);
	assert_int_equal(c->rate_limit.burst_size, 50);
	assert_int_equal(c->audit.export_batch_size, 100);
	assert_false(c->auth.jwt.present);
	const struct mg_upstream_config *u;
	assert_int_equal(mg_config_upstreams(c, &u), 1);
	assert_string_equal(u->name, "default");
	assert_string_equal(u->command, "node");
	assert_int_equal(u->transport, MG_TRANSPORT_STDIO);
	assert_int_equal(u->mode, MG_STDIO_SHARED);
	mg_config_free(c);
	mg_diag_free(&d);
}

static void test_templates_validate(void **state)
{
	(void)state;
	enum mg_config_format fmts[] = { MG_CONFIG_TOML, MG_CONFIG_YAML };
	for (int i = 0; i < 2; i++) {
		char *t = mg_schema_template(fmts[i]);
		struct mg_diag d = { 0 };
		struct mg_config *c = load(t, fmts[i], NULL, &d);
		if (!c) {
			mg_diag_print(&d, stderr);
			fprintf(stderr, "%s\n", t);
		}
		assert_non_null(c);
		assert_string_equal(c->upstream.single.command, "npx");
		assert_int_equal(c->upstream.single.args.n, 2);
		mg_config_free(c);
		mg_diag_free(&d);
		free(t);
	}
}

/* The man page reference (mcp-guard.toml(5)) is plain-ASCII roff: groff needs
 * no input encoding, no text line starts with a control character, and every
 * section of the Markdown reference has its .SS. */
static void test_reference_man(void **state)
{
	(void)state;
	char *man = mg_schema_reference_man();
	char *md = mg_schema_reference_markdown();
	assert_non_null(man);
	assert_non_null(md);
	for (const unsigned char *p = (const unsigned char *)man; *p; p++)
		assert_true(*p < 0x80);
	for (const char *line = man; *line; line = strchr(line, '\n') + 1) {
		if (line[0] == '.')
			assert_true(strncmp(line, ".SS ", 4) == 0 ||
			            strncmp(line, ".TP\n", 4) == 0 ||
			            strncmp(line, ".PP\n", 4) == 0);
		else
			assert_true(line[0] != '\'');
		if (!strchr(line, '\n'))
			break;
	}
	size_t sections = 0, headings = 0;
	for (const char *p = man; (p = strstr(p, "\n.SS ")); p++)
		sections++;
	for (const char *p = md; (p = strstr(p, "\n### ")); p++)
		headings++;
	assert_true(headings > 10);
	assert_int_equal(sections + (strncmp(man, ".SS ", 4) == 0), headings);
	assert_non_null(
	    strstr(man, "\\fBport\\fR (integer, 1\\[u2013]65535; default \\fB3000\\fR)"));
	free(man);
	free(md);
}

/* Every key must have a default or an example, or `init` writes nonsense. */
static void check_section_examples(const struct mg_section *sec)
{
	for (size_t i = 0; i < sec->n_fields; i++) {
		const struct mg_field *f = &sec->fields[i];
		if (f->type == MG_F_TABLE || f->type == MG_F_TABLE_ARRAY) {
			check_section_examples(f->sub);
			continue;
		}
		if (!f->def && !f->example)
			fail_msg("%s.%s has neither default nor example", sec->name, f->name);
		if (!f->help || !f->help[0])
			fail_msg("%s.%s has no help text", sec->name, f->name);
	}
}

static void test_schema_complete(void **state)
{
	(void)state;
	check_section_examples(&mg_schema_root);
}

static void test_all_errors_located(void **state)
{
	(void)state;
	const char *text = "[server]\n"
	                   "port = 70000\n"
	                   "hots = \"x\"\n"
	                   "log_level = \"verbose\"\n"
	                   "[rate_limit]\n"
	                   "burst_size = \"ten\"\n"
	                   "[tracing]\n"
	                   "sample_rate = 1.5\n"
	                   "[upstream]\n"
	                   "transport = \"htttp\"\n"
	                   "url = \"ftp://x\"\n";
	struct mg_diag d = { 0 };
	struct mg_config *c = load(text, MG_CONFIG_TOML, NULL, &d);
	assert_null(c);
	assert_diag(&d, 2, 8, "server.port",
	            "expected an integer from 1 to 65535, found integer 70000");
	assert_diag(&d, 3, 1, "server.hots", "did you mean \"host\"");
	assert_diag(&d, 4, 13, "server.log_level", "expected one of");
	assert_diag(&d, 6, 14, "rate_limit.burst_size", "found string \"ten\"");
	assert_diag(&d, 8, 15, "tracing.sample_rate", "from 0 to 1");
	assert_diag(&d, 10, 13, "upstream.transport", "did you mean \"http\"");
	assert_diag(&d, 11, 7, "upstream.url", "must start with http:// or https://");
	assert_true(d.errors >= 7);
	mg_diag_free(&d);
}

static void test_yaml_locations(void **state)
{
	(void)state;
	const char *text = "server:\n"
	                   "  port: 0\n"
	                   "upstream:\n"
	                   "  command: node\n"
	                   "  mode: per-session\n";
	struct mg_diag d = { 0 };
	assert_null(load(text, MG_CONFIG_YAML, NULL, &d));
	assert_diag(&d, 2, 9, "server.port", "found integer 0");
	assert_diag(&d, 5, 9, "upstream.mode", "did you mean \"per_session\"");
	mg_diag_free(&d);
}

static void test_syntax_error_located(void **state)
{
	(void)state;
	struct mg_diag d = { 0 };
	assert_null(load("[server]\nport = = 3\n", MG_CONFIG_TOML, NULL, &d));
	assert_int_equal(d.errors, 1);
	assert_int_equal(d.v[0].line, 2);
	assert_true(d.v[0].col > 0);
	mg_diag_free(&d);
}

static void test_env_overrides(void **state)
{
	(void)state;
	char *env[] = { "MCP_GUARD_SERVER__PORT=8080",
		        "MCP_GUARD_SERVER__HOST=::1",
		        "MCP_GUARD_UPSTREAM__ARGS=a, b,c",
		        "MCP_GUARD_RATE_LIMIT__ENABLED=false",
		        "MCP_GUARD_CONFIG=ignored.toml",
		        "OTHER=1",
		        NULL };
	struct mg_diag d = { 0 };
	struct mg_config *c = load(minimal, MG_CONFIG_TOML, env, &d);
	assert_non_null(c);
	assert_int_equal(c->server.port, 8080);
	assert_string_equal(c->server.host, "::1");
	assert_int_equal(c->upstream.single.args.n, 3);
	assert_string_equal(c->upstream.single.args.v[1], "b");
	assert_false(c->rate_limit.enabled);
	mg_config_free(c);
	mg_diag_free(&d);

	char *bad[] = { "MCP_GUARD_SERVER__PROT=1", "MCP_GUARD_SERVER__PORT=abc", NULL };
	assert_null(load(minimal, MG_CONFIG_TOML, bad, &d));
	assert_int_equal(d.errors, 2);
	assert_string_equal(d.v[0].file, "env MCP_GUARD_SERVER__PROT");
	assert_non_null(strstr(d.v[0].msg, "did you mean \"port\""));
	assert_string_equal(d.v[1].file, "env MCP_GUARD_SERVER__PORT");
	mg_diag_free(&d);
}

static void test_secrets(void **state)
{
	(void)state;
	const char *text = "[auth.jwt]\nmode = \"simple\"\nsecret_env = \"MY_SECRET\"\n"
	                   "audience = \"http://x\"\n[upstream]\ncommand = \"node\"\n";
	char *env[] = { "MY_SECRET=0123456789abcdef0123456789abcdef", NULL };
	struct mg_diag d = { 0 };
	struct mg_config *c = load(text, MG_CONFIG_TOML, env, &d);
	assert_non_null(c);
	assert_string_equal(c->auth.jwt.secret, "0123456789abcdef0123456789abcdef");
	assert_int_equal(c->auth.jwt.algorithms.n, 1);
	assert_string_equal(c->auth.jwt.algorithms.v[0], "HS256");
	mg_config_free(c);
	mg_diag_free(&d);

	/* Unset variable, then a secret too short, then two sources at once. */
	assert_null(load(text, MG_CONFIG_TOML, NULL, &d));
	assert_diag(&d, 3, 14, "auth.jwt.secret_env", "MY_SECRET is not set");
	mg_diag_free(&d);
	char *shortenv[] = { "MY_SECRET=short", NULL };
	assert_null(load(text, MG_CONFIG_TOML, shortenv, &d));
	assert_diag(&d, 3, 14, "auth.jwt.secret", "at least 32 bytes, found 5");
	mg_diag_free(&d);
	const char *both = "[auth.jwt]\nsecret = \"0123456789abcdef0123456789abcdef\"\n"
	                   "secret_file = \"/nonexistent\"\n[upstream]\ncommand = \"node\"\n";
	assert_null(load(both, MG_CONFIG_TOML, NULL, &d));
	assert_diag(&d, 3, 1, "auth.jwt.secret", "set only one of");
	mg_diag_free(&d);
}

static void test_jwt_algorithm_rules(void **state)
{
	(void)state;
	const char *text = "[auth.jwt]\nmode = \"jwks\"\njwks_url = \"https://idp/jwks\"\n"
	                   "algorithms = [\"RS256\", \"HS256\", \"none\"]\n"
	                   "[upstream]\ncommand = \"node\"\n";
	struct mg_diag d = { 0 };
	assert_null(load(text, MG_CONFIG_TOML, NULL, &d));
	assert_diag(&d, 4, 24, "auth.jwt.algorithms[1]", "cannot be used with mode = \"jwks\"");
	assert_diag(&d, 4, 33, "auth.jwt.algorithms[2]", "expected one of");
	mg_diag_free(&d);
}

static void test_api_keys(void **state)
{
	(void)state;
	const char *text =
	    "[[auth.api_keys]]\nid = \"a\"\nkey_hash = \"nothash\"\n"
	    "[[auth.api_keys]]\nid = \"a\"\n"
	    "key_hash = \"47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\"\n"
	    "allowed_tools = []\n"
	    "[[auth.api_keys]]\nkey_hash = \"47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\"\n"
	    "[upstream]\ncommand = \"node\"\n";
	struct mg_diag d = { 0 };
	assert_null(load(text, MG_CONFIG_TOML, NULL, &d));
	assert_diag(&d, 3, 12, "auth.api_keys[0].key_hash", "expected the base64 SHA-256");
	assert_diag(&d, 5, 6, "auth.api_keys[1].id",
	            "duplicate API key id \"a\" (first at line 2)");
	assert_diag(&d, 8, 1, "auth.api_keys[2]", "missing required key \"id\"");
	assert_diag(&d, 9, 12, "auth.api_keys[2].key_hash", "already used by \"a\"");
	mg_diag_free(&d);

	const char *ok = "[[auth.api_keys]]\nid = \"a\"\n"
	                 "key_hash = \"47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\"\n"
	                 "allowed_tools = []\n[upstream]\ncommand = \"node\"\n";
	struct mg_config *c = load(ok, MG_CONFIG_TOML, NULL, &d);
	assert_non_null(c);
	assert_true(c->auth.api_keys[0].allowed_tools.set);
	assert_int_equal(c->auth.api_keys[0].allowed_tools.n, 0);
	assert_false(c->auth.api_keys[0].allowed_prompts.set);
	mg_config_free(c);
	mg_diag_free(&d);
}

static void test_upstream_servers(void **state)
{
	(void)state;
	const char *text = "[[upstream.servers]]\nname = \"a\"\npath_prefix = \"/a/\"\n"
	                   "command = \"node\"\n"
	                   "[[upstream.servers]]\nname = \"a\"\npath_prefix = \"/a\"\n"
	                   "transport = \"http\"\nurl = \"http://127.0.0.1:1/mcp\"\n"
	                   "[[upstream.servers]]\nname = \"b c\"\npath_prefix = \"b\"\n"
	                   "transport = \"sse\"\n";
	struct mg_diag d = { 0 };
	assert_null(load(text, MG_CONFIG_TOML, NULL, &d));
	assert_diag(&d, 6, 8, "upstream.servers[1].name", "duplicate upstream name \"a\"");
	assert_diag(&d, 7, 15, "upstream.servers[1].path_prefix", "duplicate path_prefix \"/a\"");
	assert_diag(&d, 11, 8, "upstream.servers[2].name", "letters, digits");
	assert_diag(&d, 12, 15, "upstream.servers[2].path_prefix", "starting with '/'");
	assert_diag(&d, 10, 1, "upstream.servers[2].url", "when transport = \"sse\"");
	mg_diag_free(&d);

	struct mg_config *c = load("[upstream]\n", MG_CONFIG_TOML, NULL, &d);
	assert_null(c);
	assert_non_null(strstr(d.v[0].msg, "no upstream configured"));
	mg_diag_free(&d);
}

/* tool_pinning needs pins_file; cursor_secret is long enough; the section-wide keys do not
 * make [upstream] a single upstream next to [[upstream.servers]]. */
static void test_upstream_pinning_keys(void **state)
{
	(void)state;
	struct mg_diag d = { 0 };
	const char *text = "[upstream]\ncursor_secret = \"short\"\n"
	                   "[[upstream.servers]]\nname = \"a\"\npath_prefix = \"/a\"\n"
	                   "command = \"node\"\ntool_pinning = \"block\"\n";
	assert_null(load(text, MG_CONFIG_TOML, NULL, &d));
	assert_diag(&d, 2, 17, "upstream.cursor_secret", "at least 32 bytes, found 5");
	assert_diag(&d, 7, 16, "upstream.servers[0].tool_pinning",
	            "tool_pinning = \"block\" needs upstream.pins_file");
	mg_diag_free(&d);

	assert_null(load("[upstream]\ncommand = \"node\"\ntool_pinning = \"warn\"\n",
	                 MG_CONFIG_TOML, NULL, &d));
	assert_diag(&d, 3, 16, "upstream.tool_pinning", "\"warn\" needs upstream.pins_file");
	mg_diag_free(&d);

	text = "[upstream]\npins_file = \"/var/lib/mcp-guard/pins.json\"\n"
	       "cursor_secret = \"0123456789abcdef0123456789abcdef\"\n"
	       "[[upstream.servers]]\nname = \"a\"\npath_prefix = \"/a\"\n"
	       "command = \"node\"\ntool_pinning = \"block\"\n"
	       "[[upstream.servers]]\nname = \"b\"\npath_prefix = \"/b\"\ncommand = \"node\"\n";
	struct mg_config *c = load(text, MG_CONFIG_TOML, NULL, &d);
	if (!c)
		mg_diag_print(&d, stderr);
	assert_non_null(c);
	assert_int_equal(c->upstream.n_servers, 2);
	assert_false(c->upstream.single_present);
	assert_string_equal(c->upstream.pins_file, "/var/lib/mcp-guard/pins.json");
	assert_string_equal(c->upstream.cursor_secret, "0123456789abcdef0123456789abcdef");
	assert_int_equal(c->upstream.servers[0].tool_pinning, MG_PINNING_BLOCK);
	assert_int_equal(c->upstream.servers[1].tool_pinning, MG_PINNING_OFF);
	mg_config_free(c);
	mg_diag_free(&d);

	c = load(minimal, MG_CONFIG_TOML, NULL, &d);
	assert_non_null(c);
	assert_int_equal(c->upstream.single.tool_pinning, MG_PINNING_OFF);
	assert_null(c->upstream.pins_file);
	assert_null(c->upstream.cursor_secret);
	mg_config_free(c);
	mg_diag_free(&d);
}

static void test_exposure_requires_auth(void **state)
{
	(void)state;
	const char *text = "[server]\nhost = \"0.0.0.0\"\n[upstream]\ncommand = \"node\"\n";
	struct mg_diag d = { 0 };
	assert_null(load(text, MG_CONFIG_TOML, NULL, &d));
	assert_diag(&d, 2, 8, "server.host", "only listen on a loopback address");
	mg_diag_free(&d);
}

static void test_hostile_values(void **state)
{
	(void)state;
	/* NUL inside a string value and a key; a huge array; wrong container types. */
	const char *text =
	    "[server]\nhost = \"a\\u0000b\"\nallowed_origins = \"https://x.example\"\n"
	    "[audit]\nexport_headers = [1]\n[upstream]\ncommand = \"node\"\n"
	    "env = { \"A\" = 1 }\n";
	struct mg_diag d = { 0 };
	assert_null(load(text, MG_CONFIG_TOML, NULL, &d));
	assert_diag(&d, 2, 8, "server.host", "without NUL");
	assert_diag(&d, 5, 18, "audit.export_headers", "expected a table of strings");
	assert_diag(&d, 8, 15, "upstream.env.A", "expected a string");
	mg_diag_free(&d);
}

/* [tracing]: the encoding, and otlp_headers checked like every header
 * table (the gateway's own headers refused), values from the environment. */
static void test_tracing_section(void **state)
{
	(void)state;
	char *const envp[] = { "HC_KEY=hc_secret", NULL };
	const char *ok = "[tracing]\nenabled = true\notlp_endpoint = \"https://api.honeycomb.io\"\n"
	                 "otlp_headers_env = { x-honeycomb-team = \"HC_KEY\" }\n"
	                 "[upstream]\ncommand = \"node\"\n";
	struct mg_diag d = { 0 };
	struct mg_config *cfg = load(ok, MG_CONFIG_TOML, envp, &d);
	assert_non_null(cfg);
	assert_int_equal(cfg->tracing.otlp_protocol, MG_OTLP_PROTOBUF);
	assert_int_equal(cfg->tracing.otlp_headers.n, 1);
	assert_string_equal(cfg->tracing.otlp_headers.v[0].value, "hc_secret");
	mg_config_free(cfg);
	mg_diag_free(&d);
	const char *bad = "[tracing]\nenabled = true\notlp_endpoint = \"https://c.example\"\n"
	                  "otlp_protocol = \"grpc\"\n"
	                  "otlp_headers = { Content-Type = \"text/plain\", \"a b\" = \"1\" }\n"
	                  "[upstream]\ncommand = \"node\"\n";
	memset(&d, 0, sizeof d);
	assert_null(load(bad, MG_CONFIG_TOML, NULL, &d));
	assert_diag(&d, 4, 17, "tracing.otlp_protocol", "http/protobuf");
	assert_diag(&d, 5, 16, "tracing.otlp_headers", "the gateway sets this header itself");
	assert_diag(&d, 5, 16, "tracing.otlp_headers", "names are tokens");
	mg_diag_free(&d);
	/* A credential header over http:// to another host: a warning (the
	 * configuration still loads); not to loopback, not over https. */
	const char *clear = "[tracing]\nenabled = true\n"
	                    "otlp_endpoint = \"http://collector.example:4318/\"\n"
	                    "otlp_headers = { Authorization = \"Bearer x\" }\n"
	                    "[audit]\nexport_url = \"http://[::1]:9/in\"\n"
	                    "export_headers = { Authorization = \"Bearer y\" }\n"
	                    "[upstream]\ncommand = \"node\"\n";
	memset(&d, 0, sizeof d);
	cfg = load(clear, MG_CONFIG_TOML, NULL, &d);
	assert_non_null(cfg);
	assert_diag(&d, 3, 17, "tracing.otlp_endpoint",
	            "otlp_headers are sent in clear text to collector.example");
	for (size_t i = 0; i < d.n; i++)
		assert_null(strstr(d.v[i].msg, "export_headers are sent"));
	mg_config_free(cfg);
	mg_diag_free(&d);
}

/* export_compression and otlp_compression: the values, the default, the
 * gateway's own Content-Encoding, and a compression with nothing to send. */
static void test_export_compression(void **state)
{
	(void)state;
	struct mg_diag d = { 0 };
	struct mg_config *cfg = load("[upstream]\ncommand = \"node\"\n", MG_CONFIG_TOML, NULL, &d);
	assert_non_null(cfg);
	assert_int_equal(cfg->audit.export_compression, MG_COMPRESS_NONE);
	assert_int_equal(cfg->tracing.otlp_compression, MG_COMPRESS_NONE);
	mg_config_free(cfg);
	mg_diag_free(&d);
	const char *ok = "[audit]\nexport_url = \"https://siem.example/in\"\n"
	                 "export_compression = \"gzip\"\n"
	                 "[tracing]\nenabled = true\notlp_endpoint = \"https://c.example\"\n"
	                 "otlp_compression = \"gzip\"\n"
	                 "[upstream]\ncommand = \"node\"\n";
	memset(&d, 0, sizeof d);
	cfg = load(ok, MG_CONFIG_TOML, NULL, &d);
	assert_non_null(cfg);
	assert_int_equal(d.n, 0);
	assert_int_equal(cfg->audit.export_compression, MG_COMPRESS_GZIP);
	assert_int_equal(cfg->tracing.otlp_compression, MG_COMPRESS_GZIP);
	mg_config_free(cfg);
	mg_diag_free(&d);
	const char *bad = "[audit]\nexport_url = \"https://siem.example/in\"\n"
	                  "export_compression = \"br\"\n"
	                  "export_headers = { Content-Encoding = \"gzip\" }\n"
	                  "[tracing]\nenabled = true\notlp_endpoint = \"https://c.example\"\n"
	                  "otlp_headers = { content-encoding = \"gzip\" }\n"
	                  "[upstream]\ncommand = \"node\"\n";
	memset(&d, 0, sizeof d);
	assert_null(load(bad, MG_CONFIG_TOML, NULL, &d));
	assert_diag(&d, 3, 22, "audit.export_compression", "gzip");
	assert_diag(&d, 4, 18, "audit.export_headers", "the gateway sets this header itself");
	assert_diag(&d, 8, 16, "tracing.otlp_headers", "the gateway sets this header itself");
	mg_diag_free(&d);
	/* nothing to compress: a warning, the file still loads */
	memset(&d, 0, sizeof d);
	cfg = load("[audit]\nfile = \"/tmp/a.jsonl\"\nexport_compression = \"gzip\"\n"
	           "[upstream]\ncommand = \"node\"\n",
	           MG_CONFIG_TOML, NULL, &d);
	assert_non_null(cfg);
	assert_diag(&d, 3, 22, "audit.export_compression", "only used with export_url");
	mg_config_free(cfg);
	mg_diag_free(&d);
}

static void test_metrics_section(void **state)
{
	(void)state;
	char host[64];
	int port = 0;
	assert_int_equal(mg_hostport_split("127.0.0.1:9464", host, sizeof host, &port), 0);
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(port, 9464);
	assert_int_equal(mg_hostport_split("[::1]:80", host, sizeof host, &port), 0);
	assert_string_equal(host, "::1");
	const char *bad[] = { "9464", ":9464",   "::1:80", "h:0", "h:65536",
		              "h:",   "[::1]80", "h:9x",   NULL };
	for (size_t i = 0; bad[i]; i++)
		assert_int_equal(mg_hostport_split(bad[i], host, sizeof host, &port), -1);
	/* an upstream URL's authority (server.address and server.port of spans) */
	const struct {
		const char *url, *host;
		int port;
	} urls[] = { { "http://127.0.0.1:8080/mcp", "127.0.0.1", 8080 },
		     { "https://api.example.com/mcp?x=1", "api.example.com", 443 },
		     { "http://user:pw@files.internal/mcp", "files.internal", 80 },
		     { "https://[2001:db8::1]/mcp", "2001:db8::1", 443 },
		     { "http://[::1]:9000", "::1", 9000 },
		     { "https://h.example#frag", "h.example", 443 } };
	for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++) {
		port = 0;
		assert_int_equal(mg_url_host_port(urls[i].url, host, sizeof host, &port), 0);
		assert_string_equal(host, urls[i].host);
		assert_int_equal(port, urls[i].port);
	}
	const char *bad_urls[] = { "ftp://h/x",    "http:///mcp", "http://h:0/", "http://h:99999/",
		                   "http://[::1/", "stdio",       "http://h:x/", NULL };
	for (size_t i = 0; bad_urls[i]; i++)
		assert_int_equal(mg_url_host_port(bad_urls[i], host, sizeof host, &port), -1);

	const char *text = "[server]\nmcp_path = \"/m\"\n[metrics]\npath = \"/m\"\n"
	                   "listen = \"localhost\"\n[upstream]\ncommand = \"node\"\n";
	struct mg_diag d = { 0 };
	assert_null(load(text, MG_CONFIG_TOML, NULL, &d));
	assert_diag(&d, 5, 10, "metrics.listen", "expected host:port");
	assert_diag(&d, 4, 8, "metrics.path", "is the MCP endpoint");
	mg_diag_free(&d);
	struct mg_config *c = load("[upstream]\ncommand = \"node\"\n", MG_CONFIG_TOML, NULL, &d);
	assert_non_null(c);
	assert_true(c->metrics.enabled);
	assert_true(c->metrics.require_auth);
	assert_string_equal(c->metrics.path, "/metrics");
	assert_null(c->metrics.listen);
	mg_config_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_templates_validate),
		cmocka_unit_test(test_reference_man),
		cmocka_unit_test(test_schema_complete),
		cmocka_unit_test(test_all_errors_located),
		cmocka_unit_test(test_yaml_locations),
		cmocka_unit_test(test_syntax_error_located),
		cmocka_unit_test(test_env_overrides),
		cmocka_unit_test(test_secrets),
		cmocka_unit_test(test_jwt_algorithm_rules),
		cmocka_unit_test(test_api_keys),
		cmocka_unit_test(test_upstream_servers),
		cmocka_unit_test(test_upstream_pinning_keys),
		cmocka_unit_test(test_exposure_requires_auth),
		cmocka_unit_test(test_hostile_values),
		cmocka_unit_test(test_tracing_section),
		cmocka_unit_test(test_export_compression),
		cmocka_unit_test(test_metrics_section),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
