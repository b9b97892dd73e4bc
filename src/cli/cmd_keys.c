/*
 * cmd_keys.c - `keygen` and `hash-key`.
 *
 * A key is "mcp_" + base64url(32 bytes from getrandom). Its hash - what the
 * configuration stores - is base64(SHA-256(whole key)). The key is printed
 * once and never written anywhere by the gateway.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "util/buf.h"
#include "util/crypto.h"
#include "util/str.h"

#define KEY_RANDOM_BYTES 32
#define KEY_PREFIX       "mcp_"
#define HASH_B64_LEN     44
#define STDIN_KEY_MAX    4096

static void key_hash(const char *key, size_t len, char out[HASH_B64_LEN + 1])
{
	uint8_t digest[MG_SHA256_LEN];
	mg_sha256(key, len, digest);
	mg_base64_encode(digest, sizeof digest, out, HASH_B64_LEN + 1, false);
}

/* Quotes `s` for TOML and YAML double-quoted strings (same escapes). */
static void quote(struct mg_buf *b, const char *s)
{
	mg_buf_putc(b, '"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			mg_buf_putc(b, '\\');
		mg_buf_putc(b, *s);
	}
	mg_buf_putc(b, '"');
}

static bool printable(const char *s)
{
	for (; *s; s++) {
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	}
	return true;
}

int mg_cmd_keygen(struct mg_cli *cli)
{
	const char *user = mg_cli_opt(cli, "user-id");
	const char *rate = mg_cli_opt(cli, "rate-limit");
	const char *tools = mg_cli_opt(cli, "tools");
	const char *format = mg_cli_opt(cli, "format");
	bool yaml = false;
	int64_t rps = 0;
	int rc = MG_EXIT_USAGE;
	struct mg_buf snip;
	mg_buf_init(&snip, 0);

	if (!user || !*user) {
		fprintf(stderr, "mcp-guard: keygen needs --user-id ID (the identity the key "
		                "belongs to)\n");
		goto out;
	}
	if (!printable(user) || strlen(user) > 256 || !mg_utf8_valid(user, strlen(user))) {
		fprintf(stderr, "mcp-guard: --user-id must be at most 256 printable UTF-8 "
		                "characters\n");
		goto out;
	}
	if (rate && mg_parse_i64(rate, 1, 1000000, &rps) < 0) {
		fprintf(stderr,
		        "mcp-guard: --rate-limit must be an integer from 1 to 1000000, "
		        "not \"%s\"\n",
		        rate);
		goto out;
	}
	if (format && !strcmp(format, "yaml"))
		yaml = true;
	else if (format && strcmp(format, "toml")) {
		fprintf(stderr, "mcp-guard: --format must be toml or yaml, not \"%s\"\n", format);
		goto out;
	}

	uint8_t raw[KEY_RANDOM_BYTES];
	char key[64], hash[HASH_B64_LEN + 1];
	if (mg_random_bytes(raw, sizeof raw) < 0) {
		fprintf(stderr, "mcp-guard: cannot read random bytes from the kernel\n");
		rc = MG_EXIT_RUNTIME;
		goto out;
	}
	memcpy(key, KEY_PREFIX, 4);
	mg_base64_encode(raw, sizeof raw, key + 4, sizeof key - 4, true);
	key_hash(key, strlen(key), hash);

	mg_buf_puts(&snip, yaml ? "auth:\n  api_keys:\n    - id: " : "[[auth.api_keys]]\nid = ");
	quote(&snip, user);
	mg_buf_printf(&snip, yaml ? "\n      key_hash: \"%s\"\n" : "\nkey_hash = \"%s\"\n", hash);
	if (rps)
		mg_buf_printf(&snip, yaml ? "      rate_limit: %lld\n" : "rate_limit = %lld\n",
		              (long long)rps);
	if (tools) {
		mg_buf_puts(&snip, yaml ? "      allowed_tools: [" : "allowed_tools = [");
		const char *p = tools;
		int n = 0;
		while (*p) {
			size_t len = strcspn(p, ",");
			char *item = mg_strndup(p, len);
			char *s = item, *e = item + len;
			while (*s == ' ')
				s++;
			while (e > s && e[-1] == ' ')
				*--e = '\0';
			if (!*s || !printable(s)) {
				free(item);
				fprintf(stderr,
				        "mcp-guard: --tools takes a comma-separated list of "
				        "tool names, e.g. --tools echo,get_*\n");
				goto out;
			}
			if (n++)
				mg_buf_puts(&snip, ", ");
			quote(&snip, s);
			free(item);
			p += len;
			if (*p == ',')
				p++;
		}
		mg_buf_puts(&snip, "]\n");
	}

	printf("API key for \"%s\" - it is shown only this once; store it now:\n\n  %s\n\n"
	       "Key hash (goes into the configuration):\n\n  %s\n\n"
	       "Configuration snippet (%s):\n\n%s\n"
	       "Clients send it as `Authorization: Bearer <key>` or `X-API-Key: <key>`.\n",
	       user, key, hash, yaml ? "YAML, merge into auth.api_keys" : "TOML", snip.data);
	memset(key, 0, sizeof key);
	memset(raw, 0, sizeof raw);
	rc = MG_EXIT_OK;
out:
	mg_buf_free(&snip);
	return rc;
}

int mg_cmd_hash_key(struct mg_cli *cli)
{
	if (cli->n_args != 1) {
		fprintf(stderr, "mcp-guard: hash-key needs the key, or - to read it from standard "
		                "input\nUsage: mcp-guard hash-key KEY | -\n");
		return MG_EXIT_USAGE;
	}
	char buf[STDIN_KEY_MAX + 2];
	const char *key = cli->args[0];
	size_t len;
	if (strcmp(key, "-") == 0) {
		len = fread(buf, 1, sizeof buf - 1, stdin);
		if (len > STDIN_KEY_MAX) {
			fprintf(stderr,
			        "mcp-guard: key on standard input is longer than %d bytes\n",
			        STDIN_KEY_MAX);
			return MG_EXIT_USAGE;
		}
		buf[len] = '\0';
		/* Only the first line is the key. */
		len = strcspn(buf, "\r\n");
		buf[len] = '\0';
		key = buf;
	} else {
		len = strlen(key);
	}
	if (len == 0) {
		fprintf(stderr, "mcp-guard: the key is empty\n");
		return MG_EXIT_USAGE;
	}
	char hash[HASH_B64_LEN + 1];
	key_hash(key, len, hash);
	memset(buf, 0, sizeof buf);
	printf("%s\n", hash);
	return MG_EXIT_OK;
}
