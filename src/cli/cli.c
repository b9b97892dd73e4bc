/*
 * cli.c - command-line parsing, help and dispatch (see cli.h).
 *
 * Global options (--config, --verbose) are accepted before or after the
 * command. Options take their value as `--opt value` or `--opt=value`.
 * Anything unknown is a usage error (exit 2) that says what was expected.
 */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "util/log.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const struct mg_cli_opt_spec init_opts[] = {
	{ "format", true, "toml|yaml",
	  "Template format (default: from --config's extension, else toml)." },
	{ "force", false, NULL, "Overwrite an existing file." },
	{ "output", true, "PATH",
	  "Where to write (default: --config, else mcp-guard.toml or .yaml)." },
};
static const struct mg_cli_opt_spec validate_opts[] = {
	{ "quiet", false, NULL, "Print nothing when the configuration is valid." },
};
static const struct mg_cli_opt_spec keygen_opts[] = {
	{ "user-id", true, "ID", "Identity the key belongs to (required)." },
	{ "rate-limit", true, "N", "Requests per second for this key." },
	{ "tools", true, "a,b,...", "Tools the key may call (globs allowed); default: all." },
	{ "format", true, "toml|yaml", "Format of the configuration snippet (default: toml)." },
};
static const struct mg_cli_opt_spec run_opts[] = {
	{ "host", true, "H", "Listen address (overrides server.host)." },
	{ "port", true, "P", "Listen port (overrides server.port)." },
};
static const struct mg_cli_opt_spec check_opts[] = {
	{ "timeout", true, "S", "Seconds to wait for each upstream (default: 10)." },
	{ "server", true, "NAME", "Check only the upstream named NAME ([[upstream.servers]])." },
};
static const struct mg_cli_opt_spec version_opts[] = {
	{ "json", false, NULL, "Print the build information as JSON." },
};

static const struct mg_cli_opt_spec reference_opts[] = {
	{ "man", false, NULL, "Print roff for the mcp-guard.toml(5) man page instead." },
};

static const struct mg_cli_command commands[] = {
	{ "init", "write a commented configuration template", "[--format toml|yaml] [--force]",
	  "Writes a configuration file listing every section and key with its default and a "
	  "comment. The template validates as written and runs the demo upstream.",
	  init_opts, COUNT(init_opts), 0, mg_cmd_init },
	{ "validate", "check a configuration file", "[--config PATH]",
	  "Parses the configuration and checks types, required keys, ranges, URLs, enum values "
	  "and cross-key rules. Prints every problem as file:line:column: key: message. Exit 1 "
	  "when invalid.",
	  validate_opts, COUNT(validate_opts), 0, mg_cmd_validate },
	{ "keygen", "create an API key",
	  "--user-id ID [--rate-limit N] [--tools a,b] [--format toml|yaml]",
	  "Creates a random API key (mcp_ + 43 characters), prints it once with its hash and a "
	  "configuration snippet. Only the hash goes into the configuration.",
	  keygen_opts, COUNT(keygen_opts), 0, mg_cmd_keygen },
	{ "hash-key", "print the hash of an API key", "KEY | -",
	  "Prints the base64 SHA-256 of KEY, as used in auth.api_keys key_hash. With - the key "
	  "is read from standard input, which keeps it out of shell history.",
	  NULL, 0, 1, mg_cmd_hash_key },
	{ "run", "start the gateway", "[--host H] [--port P]",
	  "Starts the gateway with the configuration. SIGTERM or SIGINT stops it gracefully; "
	  "SIGHUP reloads the configuration.",
	  run_opts, COUNT(run_opts), 0, mg_cmd_run },
	{ "check-upstream", "check that every upstream answers", "[--timeout S] [--server NAME]",
	  "Starts or contacts each configured upstream (or only --server NAME, performs the MCP "
	  "handshake and prints "
	  "its name, version, protocol and tool count, or why it failed.",
	  check_opts, COUNT(check_opts), 0, mg_cmd_check_upstream },
	{ "version", "print version and build information", "[--json]",
	  "Prints the version, git commit, build date, compiler, library versions and the "
	  "features compiled in.",
	  version_opts, COUNT(version_opts), 0, mg_cmd_version },
	{ "config-reference", "print the configuration reference (Markdown)", "",
	  "Prints the configuration reference tables generated from the schema; "
	  "docs/configuration.md embeds this output, mcp-guard.toml(5) the --man one.",
	  reference_opts, COUNT(reference_opts), 0, mg_cmd_config_reference },
	{ "audit", "verify a hash-chained audit log", "verify FILE...",
	  "Checks that the audit records in FILE... (one chain, oldest file first) are\n"
	  "complete and unmodified: prints \"OK: N records, head <hash>\" and exits 0, or\n"
	  "the first broken or missing record (file, line, seq, reason) and exits 1.\n"
	  "Records are written with [audit] hash_chain = true.",
	  NULL, 0, MG_CLI_MAX_ARGS, mg_cmd_audit },
	{ "tools", "list pinned tool definitions, approve changes", "list | approve SERVER TOOL",
	  "Tool pinning ([upstream] pins_file, tool_pinning per server): `list` prints every\n"
	  "pinned tool with its hash and any pending (changed, unapproved) definition;\n"
	  "`approve SERVER TOOL` makes the pending definition the pinned one. The running\n"
	  "gateway picks approvals up on SIGHUP. Exit 1 when there is nothing to approve.",
	  NULL, 0, 3, mg_cmd_tools },
};

static void print_main_help(FILE *out)
{
	fprintf(out, "mcp-guard - a security gateway for MCP servers\n\n"
	             "Usage: mcp-guard [--config PATH] [--verbose] <command> [options]\n\n"
	             "Commands:\n");
	for (size_t i = 0; i < COUNT(commands); i++)
		fprintf(out, "  %-18s %s\n", commands[i].name, commands[i].summary);
	fprintf(out, "\nGlobal options:\n"
	             "  -c, --config PATH  configuration file (default: mcp-guard.toml, then "
	             "mcp-guard.yaml)\n"
	             "  -v, --verbose      debug logging\n"
	             "  -h, --help         help (also: mcp-guard <command> --help)\n\n"
	             "Exit codes: 0 ok, 1 invalid configuration or failed check, 2 usage error,\n"
	             "3 runtime failure (bind, TLS, upstream start).\n");
}

static void print_command_help(const struct mg_cli_command *c, FILE *out)
{
	fprintf(out, "Usage: mcp-guard %s %s\n\n%s\n", c->name, c->usage, c->description);
	if (c->n_opts) {
		fprintf(out, "\nOptions:\n");
		for (size_t i = 0; i < c->n_opts; i++) {
			char left[64];
			snprintf(left, sizeof left, "--%s%s%s", c->opts[i].name,
			         c->opts[i].has_arg ? " " : "",
			         c->opts[i].has_arg ? c->opts[i].arg_name : "");
			fprintf(out, "  %-24s %s\n", left, c->opts[i].help);
		}
	}
	fprintf(out, "\nGlobal options: --config PATH, --verbose, --help\n");
}

static const struct mg_cli_command *current;

const char *mg_cli_opt(const struct mg_cli *cli, const char *name)
{
	for (size_t i = 0; current && i < current->n_opts; i++) {
		if (strcmp(current->opts[i].name, name) == 0)
			return cli->opt_value[i];
	}
	return NULL;
}

bool mg_cli_flag(const struct mg_cli *cli, const char *name)
{
	for (size_t i = 0; current && i < current->n_opts; i++) {
		if (strcmp(current->opts[i].name, name) == 0)
			return cli->opt_set[i];
	}
	return false;
}

const char *mg_cli_config_path(const struct mg_cli *cli)
{
	static const char *const defaults[] = { "mcp-guard.toml", "mcp-guard.yaml",
		                                "mcp-guard.yml" };
	if (cli->config_path)
		return cli->config_path;
	for (size_t i = 0; i < COUNT(defaults); i++) {
		if (access(defaults[i], F_OK) == 0)
			return defaults[i];
	}
	fprintf(stderr, "mcp-guard: no configuration file: none of mcp-guard.toml, "
	                "mcp-guard.yaml, mcp-guard.yml exists here.\n"
	                "Create one with `mcp-guard init`, or pass --config PATH.\n");
	return NULL;
}

struct mg_config *mg_cli_load_config(const struct mg_cli *cli, const char **path_out)
{
	const char *path = mg_cli_config_path(cli);
	if (path_out)
		*path_out = path;
	if (!path)
		return NULL;
	struct mg_diag diag = { 0 };
	struct mg_config *cfg = mg_config_load(path, MG_CONFIG_AUTO, cli->envp, &diag);
	mg_diag_print(&diag, stderr);
	if (!cfg)
		fprintf(stderr, "%s: %zu error%s\n", path, diag.errors,
		        diag.errors == 1 ? "" : "s");
	mg_diag_free(&diag);
	return cfg;
}

int mg_cli_subcommand_error(const struct mg_cli *cli, const char *usage)
{
	fprintf(stderr, "mcp-guard: %s: unknown or missing subcommand%s%s\nUsage: %s\n",
	        cli->command, cli->n_args ? " " : "", cli->n_args ? cli->args[0] : "", usage);
	return MG_EXIT_USAGE;
}

static int usage_error(const struct mg_cli_command *c, const char *fmt, const char *what)
{
	fprintf(stderr, "mcp-guard: ");
	fprintf(stderr, fmt, what);
	if (c)
		fprintf(stderr, "\nUsage: mcp-guard %s %s (see mcp-guard %s --help)\n", c->name,
		        c->usage, c->name);
	else
		fprintf(stderr, "\nRun mcp-guard --help for the commands.\n");
	return MG_EXIT_USAGE;
}

int mg_cli_main(int argc, char **argv, char **envp)
{
	struct mg_cli cli = { .envp = envp };
	const struct mg_cli_command *cmd = NULL;
	bool help = false;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (a[0] == '-' && a[1] != '\0' && strcmp(a, "--") != 0) {
			char name[64];
			const char *value = NULL;
			const char *eq = strchr(a, '=');
			size_t nlen = eq ? (size_t)(eq - a) : strlen(a);
			if (nlen >= sizeof name)
				return usage_error(cmd, "unknown option %s", a);
			memcpy(name, a, nlen);
			name[nlen] = '\0';
			if (eq)
				value = eq + 1;
			if (!strcmp(name, "-h") || !strcmp(name, "--help")) {
				help = true;
				continue;
			}
			if (!strcmp(name, "-v") || !strcmp(name, "--verbose")) {
				cli.verbose = true;
				continue;
			}
			if (!strcmp(name, "-c") || !strcmp(name, "--config")) {
				if (!value) {
					if (i + 1 >= argc)
						return usage_error(cmd, "%s needs a path", name);
					value = argv[++i];
				}
				cli.config_path = value;
				continue;
			}
			if (!cmd)
				return usage_error(NULL,
				                   "unknown option %s (options of a command go "
				                   "after the command)",
				                   a);
			size_t k = 0;
			while (k < cmd->n_opts && (strncmp(name, "--", 2) != 0 ||
			                           strcmp(cmd->opts[k].name, name + 2) != 0))
				k++;
			if (k == cmd->n_opts)
				return usage_error(cmd, "unknown option %s", name);
			if (cmd->opts[k].has_arg && !value) {
				if (i + 1 >= argc)
					return usage_error(cmd, "%s needs a value", name);
				value = argv[++i];
			} else if (!cmd->opts[k].has_arg && value) {
				return usage_error(cmd, "%s takes no value", name);
			}
			cli.opt_set[k] = true;
			cli.opt_value[k] = value;
			continue;
		}
		if (!cmd) {
			if (!strcmp(a, "help")) {
				help = true;
				continue;
			}
			for (size_t c = 0; c < COUNT(commands); c++) {
				if (!strcmp(commands[c].name, a))
					cmd = &commands[c];
			}
			if (!cmd)
				return usage_error(NULL, "unknown command \"%s\"", a);
			current = cmd;
			cli.command = cmd->name;
			continue;
		}
		if (cli.n_args >= cmd->max_args)
			return usage_error(cmd, "unexpected argument \"%s\"", a);
		cli.args[cli.n_args++] = a;
	}
	if (help) {
		if (cmd)
			print_command_help(cmd, stdout);
		else
			print_main_help(stdout);
		return MG_EXIT_OK;
	}
	if (!cmd) {
		print_main_help(stderr);
		return MG_EXIT_USAGE;
	}
	if (cli.verbose)
		mg_log_set_level(MG_LOG_DEBUG);
	return cmd->run(&cli);
}
