/*
 * yaml-decoder.c - YAML on stdin -> toml-test's tagged JSON on stdout.
 *
 * A debugging and testing tool for config/yaml.c: it prints the tree the
 * loader builds in the shape toml-test uses, so the same comparison scripts
 * work for both syntaxes:
 *
 *   {"key": {"type": "string", "value": "..."}}
 *
 * with types string, integer, float, bool, null (value ""), the TOML
 * date-time types should they ever appear, tables as JSON objects and arrays
 * as JSON arrays. On a parse error it prints "file:line:col: message" to
 * stderr and exits 1. Usage: yaml-decoder [name-for-messages] < file.yaml
 */
#include "config/tree.h"
#include "config/yaml.h"

#include <inttypes.h>
#include <jansson.h>
#include <math.h>
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

/* The shortest "%.*g" form that reads back as the same double. */
static void format_float(char *out, size_t cap, double f)
{
	if (isnan(f)) {
		snprintf(out, cap, "nan");
		return;
	}
	if (isinf(f)) {
		snprintf(out, cap, "%sinf", f < 0 ? "-" : "");
		return;
	}
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(out, cap, "%.*g", prec, f);
		if (strtod(out, NULL) == f)
			break;
	}
}

/* Converts `n` to tagged JSON. The tree is at most MG_CDOC_MAX_DEPTH deep,
 * so recursion is bounded. */
static json_t *to_json(const struct mg_cnode *n)
{
	char buf[64];

	switch (n->type) {
	case MG_CNODE_TABLE: {
		json_t *o = json_object();
		for (const struct mg_cnode *c = n->first; o && c; c = c->next) {
			if (json_object_setn_new(o, c->key, c->key_len, to_json(c)) < 0) {
				json_decref(o);
				return NULL;
			}
		}
		return o;
	}
	case MG_CNODE_ARRAY: {
		json_t *a = json_array();
		for (const struct mg_cnode *c = n->first; a && c; c = c->next) {
			if (json_array_append_new(a, to_json(c)) < 0) {
				json_decref(a);
				return NULL;
			}
		}
		return a;
	}
	case MG_CNODE_STRING:
		return tagged("string", n->str, n->len);
	case MG_CNODE_INTEGER:
		snprintf(buf, sizeof buf, "%" PRId64, n->i);
		return tagged("integer", buf, strlen(buf));
	case MG_CNODE_FLOAT:
		format_float(buf, sizeof buf, n->f);
		return tagged("float", buf, strlen(buf));
	case MG_CNODE_BOOL:
		return tagged("bool", n->b ? "true" : "false", n->b ? 4 : 5);
	case MG_CNODE_NULL:
		return tagged("null", "", 0);
	case MG_CNODE_DATETIME:
		return tagged("datetime", n->str, n->len);
	case MG_CNODE_DATETIME_LOCAL:
		return tagged("datetime-local", n->str, n->len);
	case MG_CNODE_DATE_LOCAL:
		return tagged("date-local", n->str, n->len);
	case MG_CNODE_TIME_LOCAL:
		return tagged("time-local", n->str, n->len);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	const char *file = argc > 1 ? argv[1] : "<stdin>";
	size_t cap = 64 * 1024, len = 0;
	char *text = malloc(cap);
	struct mg_cdoc *doc = NULL;
	json_t *root = NULL;
	int rc = 1;

	if (!text)
		goto out;
	for (;;) {
		if (len == cap) {
			/* Read one byte past the limit so the loader reports the size. */
			if (cap > MG_CDOC_MAX_BYTES)
				break;
			char *t = realloc(text, cap * 2);
			if (!t)
				goto out;
			text = t;
			cap *= 2;
		}
		size_t r = fread(text + len, 1, cap - len, stdin);
		if (r == 0)
			break;
		len += r;
	}
	if (ferror(stdin)) {
		fprintf(stderr, "%s: cannot read standard input\n", file);
		goto out;
	}

	struct mg_cerror err;
	doc = mg_yaml_parse(text, len, file, &err);
	if (!doc) {
		fprintf(stderr, "%s:%u:%u: %s\n", err.loc.file, (unsigned)err.loc.line,
		        (unsigned)err.loc.col, err.msg);
		goto out;
	}
	root = to_json(mg_cdoc_root(doc));
	if (!root || json_dumpf(root, stdout, JSON_INDENT(2) | JSON_SORT_KEYS) < 0) {
		fprintf(stderr, "%s: cannot write JSON\n", file);
		goto out;
	}
	fputc('\n', stdout);
	rc = 0;
out:
	json_decref(root);
	mg_cdoc_free(doc);
	free(text);
	return rc;
}
