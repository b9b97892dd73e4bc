/*
 * main.c - mcp-guard entry point. Everything happens in cli/.
 */
#include "cli/cli.h"

int main(int argc, char **argv, char **envp)
{
	return mg_cli_main(argc, argv, envp);
}
