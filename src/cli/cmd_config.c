/*
 * cmd_config.c - `init`, `validate` and `config-reference`.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "config/config.h"
#include "config/schema.h"

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Writes `text` to `path` through a temporary file and rename(2), so a
 * crash never leaves half a configuration. Mode 0600: configurations may
 * later hold secrets. */
static int write_file_atomic(const char *path, const char *text, bool force)
{
	char tmp[4096];
	int n = snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
	if (n < 0 || (size_t)n >= sizeof tmp) {
		fprintf(stderr, "mcp-guard: path too long: %s\n", path);
		return -1;
	}
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		fprintf(stderr, "mcp-guard: cannot create %s: %s\n", tmp, strerror(errno));
		return -1;
	}
	size_t len = strlen(text), off = 0;
	while (off < len) {
		ssize_t w = write(fd, text + off, len - off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "mcp-guard: cannot write %s: %s\n", tmp, strerror(errno));
			close(fd);
			unlink(tmp);
			return -1;
		}
		off += (size_t)w;
	}
	if (fsync(fd) < 0 || close(fd) < 0) {
		fprintf(stderr, "mcp-guard: cannot write %s: %s\n", tmp, strerror(errno));
		unlink(tmp);
		return -1;
	}
	if (!force && link(tmp, path) < 0) {
		/* link(2) fails if the target exists: no race with another writer. */
		int e = errno;
		unlink(tmp);
		if (e == EEXIST)
			fprintf(stderr,
			        "mcp-guard: %s already exists; use --force to overwrite it\n",
			        path);
		else
			fprintf(stderr, "mcp-guard: cannot create %s: %s\n", path, strerror(e));
		return -1;
	}
	if (!force) {
		unlink(tmp);
		return 0;
	}
	if (rename(tmp, path) < 0) {
		fprintf(stderr, "mcp-guard: cannot replace %s: %s\n", path, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

int mg_cmd_init(struct mg_cli *cli)
{
	const char *format = mg_cli_opt(cli, "format");
	const char *out = mg_cli_opt(cli, "output");
	if (!out)
		out = cli->config_path;
	enum mg_config_format fmt = MG_CONFIG_TOML;
	if (format) {
		if (!strcmp(format, "yaml"))
			fmt = MG_CONFIG_YAML;
		else if (strcmp(format, "toml")) {
			fprintf(stderr, "mcp-guard: --format must be toml or yaml, not \"%s\"\n",
			        format);
			return MG_EXIT_USAGE;
		}
	} else if (out && (ends_with(out, ".yaml") || ends_with(out, ".yml"))) {
		fmt = MG_CONFIG_YAML;
	}
	if (!out)
		out = fmt == MG_CONFIG_YAML ? "mcp-guard.yaml" : "mcp-guard.toml";
	if (!mg_cli_flag(cli, "force") && access(out, F_OK) == 0) {
		fprintf(stderr, "mcp-guard: %s already exists; use --force to overwrite it\n", out);
		return MG_EXIT_INVALID;
	}
	char *text = mg_schema_template(fmt);
	if (!text) {
		fprintf(stderr, "mcp-guard: out of memory\n");
		return MG_EXIT_RUNTIME;
	}
	int rc = write_file_atomic(out, text, mg_cli_flag(cli, "force"));
	free(text);
	if (rc < 0)
		return MG_EXIT_INVALID;
	printf("Wrote %s.\n\nNext steps:\n"
	       "  mcp-guard --config %s validate\n"
	       "  mcp-guard keygen --user-id <you>     # then paste the snippet into %s\n"
	       "  mcp-guard --config %s run\n",
	       out, out, out, out);
	return MG_EXIT_OK;
}

static void print_summary(const char *path, const struct mg_config *cfg)
{
	const struct mg_upstream_config *ups;
	size_t n = mg_config_upstreams(cfg, &ups);
	printf("%s: valid\n", path);
	printf("  listen:    %s://%s:%lld%s\n", cfg->server.tls.enabled ? "https" : "http",
	       cfg->server.host, (long long)cfg->server.port, cfg->server.mcp_path);
	printf("  auth:      ");
	int k = 0;
	if (cfg->auth.mtls.enabled)
		printf("%smtls", k++ ? ", " : "");
	if (cfg->auth.n_api_keys)
		printf("%s%zu API key%s", k++ ? ", " : "", cfg->auth.n_api_keys,
		       cfg->auth.n_api_keys == 1 ? "" : "s");
	if (cfg->auth.jwt.present)
		printf("%sjwt (%s)", k++ ? ", " : "", cfg->auth.jwt.mode ? "jwks" : "simple");
	if (cfg->auth.oauth.present)
		printf("%soauth", k++ ? ", " : "");
	printf("%s\n", k ? "" : "none (loopback only)");
	printf("  upstreams: %zu\n", n);
	for (size_t i = 0; i < n; i++) {
		const struct mg_upstream_config *u = &ups[i];
		printf("    %s %s %s", u->name, u->path_prefix, mg_transport_name(u->transport));
		if (u->transport == MG_TRANSPORT_STDIO)
			printf(" (%s) %s", mg_stdio_mode_name(u->mode), u->command);
		else
			printf(" %s", u->url);
		printf("\n");
	}
}

int mg_cmd_validate(struct mg_cli *cli)
{
	const char *path;
	struct mg_config *cfg = mg_cli_load_config(cli, &path);
	if (!cfg)
		return path ? MG_EXIT_INVALID : MG_EXIT_USAGE;
	if (!mg_cli_flag(cli, "quiet"))
		print_summary(path, cfg);
	mg_config_free(cfg);
	return MG_EXIT_OK;
}

int mg_cmd_config_reference(struct mg_cli *cli)
{
	char *md =
	    mg_cli_flag(cli, "man") ? mg_schema_reference_man() : mg_schema_reference_markdown();
	if (!md)
		return MG_EXIT_RUNTIME;
	fputs(md, stdout);
	free(md);
	return MG_EXIT_OK;
}
