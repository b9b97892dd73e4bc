/*
 * cli.h - the command line: global options, commands, exit codes.
 *
 * main() only calls mg_cli_main(). Each command is a function taking the
 * parsed invocation; they print to stdout (results) and stderr (problems)
 * and return one of the exit codes below. docs/cli.md documents all of it.
 */
#ifndef MG_CLI_CLI_H
#define MG_CLI_CLI_H

#include <stdbool.h>
#include <stddef.h>

enum mg_exit {
	MG_EXIT_OK = 0,
	MG_EXIT_INVALID = 1, /* invalid configuration, failed check */
	MG_EXIT_USAGE = 2,   /* bad command line */
	MG_EXIT_RUNTIME = 3, /* bind, TLS, upstream start failures */
};

#define MG_CLI_MAX_OPTS 16
#define MG_CLI_MAX_ARGS 8

struct mg_cli_opt_spec {
	const char *name; /* long name without dashes */
	bool has_arg;
	const char *arg_name;
	const char *help;
};

struct mg_cli {
	const char *config_path; /* --config, or NULL */
	bool verbose;
	const char *command;
	const char *opt_value[MG_CLI_MAX_OPTS]; /* by index in the command's spec */
	bool opt_set[MG_CLI_MAX_OPTS];
	const char *args[MG_CLI_MAX_ARGS]; /* positional arguments */
	size_t n_args;
	char **envp;
};

struct mg_cli_command {
	const char *name;
	const char *summary;
	const char *usage;       /* after "mcp-guard <name> " */
	const char *description; /* paragraph printed by --help */
	const struct mg_cli_opt_spec *opts;
	size_t n_opts;
	size_t max_args;
	int (*run)(struct mg_cli *cli);
};

/* Runs the command line; returns the process exit code. */
int mg_cli_main(int argc, char **argv, char **envp);

/* The value of the command's option `name`, or NULL when not given. */
const char *mg_cli_opt(const struct mg_cli *cli, const char *name);

/* true when the command's option `name` was given. */
bool mg_cli_flag(const struct mg_cli *cli, const char *name);

/* Finds the configuration file: --config, else mcp-guard.toml, mcp-guard.yaml,
 * mcp-guard.yml in the working directory. Returns the path (static or from
 * argv), or NULL after printing why. */
const char *mg_cli_config_path(const struct mg_cli *cli);

/* Loads and validates the configuration, printing every problem on stderr.
 * Returns NULL (after printing) when invalid. */
struct mg_config *mg_cli_load_config(const struct mg_cli *cli, const char **path_out);

/* For a command with subcommands (audit, tools): prints that the first
 * argument is not one of them (or is missing) and the command's `usage`
 * line on stderr. Returns MG_EXIT_USAGE. */
int mg_cli_subcommand_error(const struct mg_cli *cli, const char *usage);

/* Commands (cmd_*.c). */
int mg_cmd_init(struct mg_cli *cli);
int mg_cmd_validate(struct mg_cli *cli);
int mg_cmd_keygen(struct mg_cli *cli);
int mg_cmd_hash_key(struct mg_cli *cli);
int mg_cmd_version(struct mg_cli *cli);
int mg_cmd_run(struct mg_cli *cli);
int mg_cmd_check_upstream(struct mg_cli *cli);
int mg_cmd_config_reference(struct mg_cli *cli);
int mg_cmd_audit(struct mg_cli *cli);
int mg_cmd_tools(struct mg_cli *cli);

#endif
