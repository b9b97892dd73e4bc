/*
 * cmd_audit.c - `audit verify FILE…`: checks a hash-chained audit log.
 *
 * The files are one chain in the order given (oldest first: after
 * logrotate, audit.jsonl.2 audit.jsonl.1 audit.jsonl). Each is streamed
 * line by line through the verifier (src/audit/verify.c); the first broken
 * or missing record is reported with file, line, seq and reason and the
 * exit code is 1; otherwise "OK: N records, head <hash>" and 0. A chain
 * cannot show a cut-off tail: compare the head with the one the gateway
 * logged (docs/observability.md).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "audit/audit.h"
#include "cli/cli.h"

#define LINE_MAX_BYTES (16u * 1024 * 1024)

/* Reads one line (without '\n') into `b`; 1, 0 at EOF, -1 when too long. */
static int read_line(FILE *fp, struct mg_buf *b, bool *partial)
{
	mg_buf_reset(b);
	*partial = false;
	int c;
	bool any = false;
	while ((c = getc_unlocked(fp)) != EOF) {
		any = true;
		if (c == '\n')
			return 1;
		if (mg_buf_putc(b, (char)c) < 0)
			return -1;
	}
	if (any)
		*partial = true;
	return any ? 1 : 0;
}

static int verify(struct mg_cli *cli)
{
	if (cli->n_args < 2) {
		fprintf(stderr, "mcp-guard: audit verify needs at least one FILE\n"
		                "Usage: mcp-guard audit verify FILE...\n");
		return MG_EXIT_USAGE;
	}
	struct mg_audit_verifier v;
	mg_audit_verify_init(&v, false);
	struct mg_buf line;
	mg_buf_init(&line, LINE_MAX_BYTES);
	int rc = MG_EXIT_OK;
	uint64_t first_seq = 0;
	for (size_t i = 1; i < cli->n_args && rc == MG_EXIT_OK; i++) {
		const char *path = cli->args[i];
		FILE *fp = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
		if (!fp) {
			fprintf(stderr, "mcp-guard: cannot open %s: %s\n", path, strerror(errno));
			rc = MG_EXIT_RUNTIME;
			break;
		}
		unsigned long long lineno = 0;
		bool partial;
		int r;
		while ((r = read_line(fp, &line, &partial)) != 0) {
			lineno++;
			if (r < 0) {
				printf("FAIL: %s:%llu: bad JSON: the line is longer than 16 MiB\n",
				       path, lineno);
				rc = MG_EXIT_INVALID;
				break;
			}
			if (line.len == 0)
				continue;
			bool was_started = v.started;
			if (mg_audit_verify_line(&v, line.data, line.len) < 0) {
				if (v.fail_has_seq)
					printf("FAIL: %s:%llu: seq %llu: %s%s\n", path, lineno,
					       (unsigned long long)v.fail_seq, v.reason,
					       partial ? " (the file ends without a line break)"
					               : "");
				else
					printf("FAIL: %s:%llu: %s%s\n", path, lineno, v.reason,
					       partial ? " (the file ends without a line break)"
					               : "");
				rc = MG_EXIT_INVALID;
				break;
			}
			if (!was_started)
				first_seq = v.next_seq - 1;
		}
		if (fp != stdin)
			fclose(fp);
	}
	if (rc == MG_EXIT_OK) {
		if (v.records == 0) {
			printf("FAIL: no records\n");
			rc = MG_EXIT_INVALID;
		} else {
			printf("OK: %llu records, head %s (seq %llu..%llu)\n",
			       (unsigned long long)v.records, v.head, (unsigned long long)first_seq,
			       (unsigned long long)(v.next_seq - 1));
			if (first_seq != 1)
				printf(
				    "note: the chain starts at seq %llu, not 1: older records are "
				    "in files not given here\n",
				    (unsigned long long)first_seq);
		}
	}
	mg_buf_free(&line);
	return rc;
}

int mg_cmd_audit(struct mg_cli *cli)
{
	if (cli->n_args >= 1 && strcmp(cli->args[0], "verify") == 0)
		return verify(cli);
	return mg_cli_subcommand_error(cli, "mcp-guard audit verify FILE...");
}
