/*
 * decoder.c - the toml-test decoder for mg_toml_parse, and the same for
 * mg_yaml_parse when the program is called yaml-decoder (one source, two
 * links: build/toml-decoder and build/yaml-decoder).
 *
 * Reads TOML (or YAML) from stdin, or from the file named by the only
 * argument, and prints toml-test's tagged JSON on stdout: tables as objects,
 * arrays as arrays, every other value as {"type": ..., "value": "<text>"}
 * (YAML's null as type "null", value ""). Exit 0. On invalid input it prints
 * "file:line:col: message" on stderr and exits 1; on a usage or I/O problem
 * it exits 2. scripts/toml-test.sh drives the TOML one.
 */
#include "config/toml.h"
#include "config/yaml.h"

#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *tagged(const char *type, const char *value, size_t len)
{
	json_t *o = json_object();
	json_t *v = json_stringn(value, len);
	if (!o || !v || json_object_set_new(o, "type", json_string(type)) < 0 ||
	    json_object_set_new(o, "value", v) < 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* The shortest "%.Ng" text that reads back as the same double. */
static void format_float(double f, char *buf, size_t size)
{
	if (isnan(f)) {
		snprintf(buf, size, "nan");
		return;
	}
	if (isinf(f)) {
		snprintf(buf, size, "%sinf", f < 0 ? "-" : "");
		return;
	}
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(buf, size, "%.*g", prec, f);
		if (strtod(buf, NULL) == f)
			return;
	}
}

static json_t *to_json(const struct mg_cnode *n)
{
	char num[64];
	switch (n->type) {
	case MG_CNODE_TABLE: {
		json_t *o = json_object();
		for (const struct mg_cnode *c = n->first; o && c; c = c->next) {
			json_t *v = to_json(c);
			if (!v || json_object_setn_new(o, c->key, c->key_len, v) < 0) {
				json_decref(o);
				o = NULL;
			}
		}
		return o;
	}
	case MG_CNODE_ARRAY: {
		json_t *a = json_array();
		for (const struct mg_cnode *c = n->first; a && c; c = c->next) {
			json_t *v = to_json(c);
			if (!v || json_array_append_new(a, v) < 0) {
				json_decref(a);
				a = NULL;
			}
		}
		return a;
	}
	case MG_CNODE_STRING:
		return tagged("string", n->str, n->len);
	case MG_CNODE_INTEGER:
		snprintf(num, sizeof num, "%" PRId64, n->i);
		return tagged("integer", num, strlen(num));
	case MG_CNODE_FLOAT:
		format_float(n->f, num, sizeof num);
		return tagged("float", num, strlen(num));
	case MG_CNODE_BOOL:
		return tagged("bool", n->b ? "true" : "false", n->b ? 4 : 5);
	case MG_CNODE_DATETIME:
		return tagged("datetime", n->str, n->len);
	case MG_CNODE_DATETIME_LOCAL:
		return tagged("datetime-local", n->str, n->len);
	case MG_CNODE_DATE_LOCAL:
		return tagged("date-local", n->str, n->len);
	case MG_CNODE_TIME_LOCAL:
		return tagged("time-local", n->str, n->len);
	case MG_CNODE_NULL:
		return tagged("null", "", 0);
	}
	return NULL;
}

/* Reads all of `f`, at most one byte more than the parser accepts, so that
 * an oversized input still reaches the parser's own size check. */
static char *read_all(FILE *f, size_t *len)
{
	size_t cap = 65536, max = MG_CDOC_MAX_BYTES + 1;
	char *buf = malloc(cap);
	*len = 0;
	while (buf) {
		size_t want = cap - *len;
		if (want > max - *len)
			want = max - *len;
		size_t got = fread(buf + *len, 1, want, f);
		*len += got;
		if (got < want || *len == max)
			break;
		if (*len == cap) {
			char *bigger = realloc(buf, cap * 2);
			if (!bigger) {
				free(buf);
				return NULL;
			}
			buf = bigger;
			cap *= 2;
		}
	}
	if (buf && ferror(f)) {
		free(buf);
		return NULL;
	}
	return buf;
}

int main(int argc, char **argv)
{
	const char *name = "<stdin>";
	FILE *in = stdin;
	int rc = 2;
	const char *prog = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
	bool yaml = strstr(prog, "yaml") != NULL;
	if (argc > 2) {
		fprintf(stderr, "usage: %s [file.%s]  (default: stdin)\n", argv[0],
		        yaml ? "yaml" : "toml");
		return 2;
	}
	if (argc == 2) {
		name = argv[1];
		in = fopen(name, "rb");
		if (!in) {
			perror(name);
			return 2;
		}
	}
	size_t len;
	char *text = read_all(in, &len);
	if (in != stdin)
		fclose(in);
	if (!text) {
		fprintf(stderr, "%s: cannot read input\n", name);
		return 2;
	}
	struct mg_cerror err;
	struct mg_cdoc *doc =
	    yaml ? mg_yaml_parse(text, len, name, &err) : mg_toml_parse(text, len, name, &err);
	if (!doc) {
		fprintf(stderr, "%s:%u:%u: %s\n", err.loc.file, (unsigned)err.loc.line,
		        (unsigned)err.loc.col, err.msg);
		rc = 1;
		goto out;
	}
	json_t *json = to_json(mg_cdoc_root(doc));
	if (json && json_dumpf(json, stdout, JSON_INDENT(2) | JSON_ENSURE_ASCII) == 0 &&
	    fputc('\n', stdout) != EOF && fflush(stdout) == 0)
		rc = 0;
	else
		fprintf(stderr, "%s: cannot write JSON\n", name);
	json_decref(json);
	mg_cdoc_free(doc);
out:
	free(text);
	return rc;
}
