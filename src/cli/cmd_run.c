/*
 * cmd_run.c - `run` and `check-upstream`: load the configuration, apply the
 * command-line overrides and hand over to the gateway.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "config/config.h"
#include "gateway/gateway.h"
#include "util/str.h"

/* Applies --host/--port; returns 0 or prints and returns -1. */
static int apply_overrides(struct mg_cli *cli, struct mg_config *cfg)
{
	const char *host = mg_cli_opt(cli, "host");
	const char *port = mg_cli_opt(cli, "port");
	if (port) {
		int64_t p;
		if (mg_parse_i64(port, 1, 65535, &p) < 0) {
			fprintf(stderr, "mcp-guard: --port must be from 1 to 65535, not \"%s\"\n",
			        port);
			return -1;
		}
		cfg->server.port = p;
	}
	if (host) {
		free(cfg->server.host);
		cfg->server.host = mg_strdup(host);
	}
	return 0;
}

int mg_cmd_run(struct mg_cli *cli)
{
	const char *path;
	struct mg_config *cfg = mg_cli_load_config(cli, &path);
	if (!cfg)
		return path ? MG_EXIT_INVALID : MG_EXIT_USAGE;
	int rc = MG_EXIT_USAGE;
	if (apply_overrides(cli, cfg) < 0)
		goto out;
	rc = mg_gateway_run(cfg);
out:
	mg_config_free(cfg);
	return rc;
}

int mg_cmd_check_upstream(struct mg_cli *cli)
{
	const char *path;
	struct mg_config *cfg = mg_cli_load_config(cli, &path);
	if (!cfg)
		return path ? MG_EXIT_INVALID : MG_EXIT_USAGE;
	const char *t = mg_cli_opt(cli, "timeout");
	int64_t timeout = 10;
	if (t && mg_parse_i64(t, 1, 3600, &timeout) < 0) {
		fprintf(stderr, "mcp-guard: --timeout must be from 1 to 3600 seconds, not \"%s\"\n",
		        t);
		mg_config_free(cfg);
		return MG_EXIT_USAGE;
	}
	int rc = mg_gateway_check_upstreams(cfg, (int)timeout, mg_cli_opt(cli, "server"));
	if (rc == 2) {
		fprintf(stderr, "mcp-guard: no upstream is named \"%s\" in %s\n",
		        mg_cli_opt(cli, "server"), path);
		mg_config_free(cfg);
		return MG_EXIT_USAGE;
	}
	mg_config_free(cfg);
	return rc ? MG_EXIT_INVALID : MG_EXIT_OK;
}
