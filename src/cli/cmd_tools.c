/*
 * cmd_tools.c - `tools list` and `tools approve SERVER TOOL`: the
 * operator's side of tool-definition pinning (gateway/pins.h).
 *
 * Both read [upstream] pins_file from the configuration. `list` prints every
 * pinned tool and, for a pending change, when it was first seen. `approve`
 * makes a pending definition the pinned one, writing the file directly
 * (this is not the event loop) under the same lock the gateway's writer
 * takes, then says to reload the gateway (SIGHUP), which merges the file.
 *
 * Exit codes: 0 done; 1 invalid configuration, pinning not configured,
 * unknown server, tool not pinned or nothing to approve; 2 usage; 3 the
 * state file cannot be read or written.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "config/config.h"
#include "gateway/pins.h"

static const char *const pinning_names[] = { "off", "warn", "block" };

static const char *pinning_name(int64_t m)
{
	return m >= 0 && m < 3 ? pinning_names[m] : "?";
}

/* The configuration and its pins_file, or an exit code after printing why. */
static int load(struct mg_cli *cli, struct mg_config **cfg_out, const char **path_out)
{
	const char *cpath;
	struct mg_config *cfg = mg_cli_load_config(cli, &cpath);
	if (!cfg)
		return MG_EXIT_INVALID;
	if (!cfg->upstream.pins_file) {
		fprintf(stderr,
		        "mcp-guard: %s: upstream.pins_file is not set, so tool pinning is off; set "
		        "pins_file and tool_pinning = \"warn\" or \"block\" on a server (see "
		        "docs/multi-server.md)\n",
		        cpath);
		mg_config_free(cfg);
		return MG_EXIT_INVALID;
	}
	*cfg_out = cfg;
	*path_out = cfg->upstream.pins_file;
	return MG_EXIT_OK;
}

struct listing {
	size_t pins, pending;
};

static void print_pin(void *arg, const char *server, const char *tool,
                      const struct mg_pin_info *info)
{
	struct listing *l = arg;
	l->pins++;
	printf("%-16s %-32s %.12s  %s", server, tool, info->sha256, info->pinned_at);
	if (*info->pending) {
		l->pending++;
		printf("  PENDING %.12s since %s", info->pending, info->changed_at);
	}
	printf("\n");
}

static int list(struct mg_cli *cli)
{
	struct mg_config *cfg;
	const char *path;
	int rc = load(cli, &cfg, &path);
	if (rc != MG_EXIT_OK)
		return rc;
	char err[512];
	struct mg_pins *p = mg_pins_open(path, err, sizeof err);
	if (!p) {
		fprintf(stderr, "mcp-guard: %s\n", err);
		mg_config_free(cfg);
		return MG_EXIT_RUNTIME;
	}
	const struct mg_upstream_config *ups;
	size_t n = mg_config_upstreams(cfg, &ups);
	printf("pins file: %s\n", path);
	for (size_t i = 0; i < n; i++)
		printf("server %s: tool_pinning = %s\n", ups[i].name,
		       pinning_name(ups[i].tool_pinning));
	printf("\n%-16s %-32s %-12s  %-20s\n", "SERVER", "TOOL", "SHA256", "PINNED AT");
	struct listing l = { 0 };
	mg_pins_each(p, print_pin, &l);
	printf("\n%zu pinned tool%s, %zu pending change%s", l.pins, l.pins == 1 ? "" : "s",
	       l.pending, l.pending == 1 ? "" : "s");
	if (l.pending)
		printf(" (approve with: mcp-guard tools approve SERVER TOOL)");
	printf("\n");
	mg_pins_free(p);
	mg_config_free(cfg);
	return MG_EXIT_OK;
}

static int approve(struct mg_cli *cli)
{
	if (cli->n_args != 3) {
		fprintf(stderr, "mcp-guard: tools approve needs SERVER and TOOL\n"
		                "Usage: mcp-guard tools approve SERVER TOOL\n");
		return MG_EXIT_USAGE;
	}
	const char *server = cli->args[1], *tool = cli->args[2];
	struct mg_config *cfg;
	const char *path;
	int rc = load(cli, &cfg, &path);
	if (rc != MG_EXIT_OK)
		return rc;
	const struct mg_upstream_config *ups;
	size_t n = mg_config_upstreams(cfg, &ups), i = 0;
	while (i < n && strcmp(ups[i].name, server) != 0)
		i++;
	if (i == n) {
		fprintf(stderr, "mcp-guard: no upstream named \"%s\" in the configuration (",
		        server);
		for (size_t k = 0; k < n; k++)
			fprintf(stderr, "%s%s", k ? ", " : "configured: ", ups[k].name);
		fprintf(stderr, ")\n");
		mg_config_free(cfg);
		return MG_EXIT_INVALID;
	}
	char err[512];
	int r = mg_pins_approve_file(path, server, tool, (int64_t)time(NULL), err, sizeof err);
	if (r == 1) {
		fprintf(stderr,
		        "mcp-guard: tool \"%s\" of server \"%s\" has no pending change: nothing to "
		        "approve\n",
		        tool, server);
		rc = MG_EXIT_INVALID;
	} else if (r < 0) {
		fprintf(stderr, "mcp-guard: %s\n", err);
		rc = strstr(err, "no pinned tool") ? MG_EXIT_INVALID : MG_EXIT_RUNTIME;
	} else {
		printf(
		    "approved: %s/%s is pinned to its new definition in %s\n"
		    "The running gateway picks this up on SIGHUP (systemctl reload mcp-guard).\n",
		    server, tool, path);
	}
	mg_config_free(cfg);
	return rc;
}

int mg_cmd_tools(struct mg_cli *cli)
{
	if (cli->n_args >= 1 && strcmp(cli->args[0], "list") == 0) {
		if (cli->n_args > 1) {
			fprintf(stderr, "mcp-guard: tools list takes no arguments\n"
			                "Usage: mcp-guard tools list\n");
			return MG_EXIT_USAGE;
		}
		return list(cli);
	}
	if (cli->n_args >= 1 && strcmp(cli->args[0], "approve") == 0)
		return approve(cli);
	return mg_cli_subcommand_error(
	    cli, "mcp-guard tools list | mcp-guard tools approve SERVER TOOL");
}
