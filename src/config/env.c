/*
 * env.c - MCP_GUARD_* environment overrides (see schema.h).
 *
 * MCP_GUARD_SERVER__PORT=8080 sets server.port: after the prefix, `__`
 * separates keys and each key is lowercased. A number selects an element
 * of an array of tables (MCP_GUARD_UPSTREAM__SERVERS__0__URL). The value
 * is typed by the schema: booleans true/false, numbers, strings, and lists
 * as comma-separated strings. Overrides are applied to the tree before
 * decoding, so they are validated like the file and their errors name the
 * variable. Names without `__` (MCP_GUARD_CONFIG) are not overrides.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/decode.h"
#include "config/schema.h"
#include "util/str.h"

#define ENV_PREFIX   "MCP_GUARD_"
#define MAX_SEGMENTS 8

struct env_ctx {
	struct mg_cdoc *doc;
	struct mg_diag *diag;
	const char *label; /* "env MCP_GUARD_..." in the document arena */
	size_t errors;
};

static void env_error(struct env_ctx *ec, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void env_error(struct env_ctx *ec, const char *path, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	mg_diag_add(ec->diag, false, ec->label, 0, 0, path, "%s", msg);
	ec->errors++;
}

static struct mg_cnode *new_node(struct env_ctx *ec, enum mg_cnode_type type)
{
	struct mg_cnode *n = mg_cnode_new(ec->doc, type, 0, 0);
	if (n) {
		n->loc.file = ec->label;
		n->key_loc = n->loc;
	}
	return n;
}

static struct mg_cnode *new_string(struct env_ctx *ec, const char *s, size_t len)
{
	struct mg_cnode *n = new_node(ec, MG_CNODE_STRING);
	if (n) {
		n->str = mg_cdoc_strndup(ec->doc, s, len);
		n->len = len;
	}
	return n;
}

/* Builds the value node for `f` from the text of the variable. */
static struct mg_cnode *make_value(struct env_ctx *ec, const struct mg_field *f, bool as_string,
                                   const char *value, const char *path)
{
	struct mg_cnode *n = NULL;
	if (as_string)
		return new_string(ec, value, strlen(value));
	switch (f->type) {
	case MG_F_BOOL:
		if (strcmp(value, "true") && strcmp(value, "false")) {
			env_error(ec, path, "expected true or false, found \"%s\"", value);
			return NULL;
		}
		n = new_node(ec, MG_CNODE_BOOL);
		if (n)
			n->b = value[0] == 't';
		return n;
	case MG_F_INT: {
		int64_t v;
		if (mg_parse_i64(value, INT64_MIN, INT64_MAX, &v) < 0) {
			env_error(ec, path, "expected an integer, found \"%s\"", value);
			return NULL;
		}
		n = new_node(ec, MG_CNODE_INTEGER);
		if (n)
			n->i = v;
		return n;
	}
	case MG_F_DOUBLE: {
		double v;
		if (mg_parse_double(value, &v) < 0) {
			env_error(ec, path, "expected a number, found \"%s\"", value);
			return NULL;
		}
		n = new_node(ec, MG_CNODE_FLOAT);
		if (n)
			n->f = v;
		return n;
	}
	case MG_F_STRING:
	case MG_F_ENUM:
		return new_string(ec, value, strlen(value));
	case MG_F_STRINGS: {
		n = new_node(ec, MG_CNODE_ARRAY);
		const char *p = value;
		while (n && *p) {
			size_t len = strcspn(p, ",");
			const char *s = p, *e = p + len;
			while (s < e && *s == ' ')
				s++;
			while (e > s && e[-1] == ' ')
				e--;
			if (e > s) {
				struct mg_cnode *item = new_string(ec, s, (size_t)(e - s));
				if (item)
					mg_cnode_push(n, item);
			}
			p += len;
			if (*p == ',')
				p++;
		}
		return n;
	}
	default:
		env_error(ec, path, "%s cannot be set from the environment; set it in the file",
		          f->type == MG_F_TABLE_ARRAY ? "an array of tables" : "a table");
		return NULL;
	}
}

static const struct mg_field *find_leaf(const struct mg_section *sec, const char *key,
                                        bool *secret_variant, char *base, size_t base_size)
{
	const struct mg_field *f = mg_schema_field(sec, key);
	*secret_variant = false;
	snprintf(base, base_size, "%s", key);
	if (f)
		return f;
	size_t n = strlen(key);
	const char *suffixes[] = { "_env", "_file" };
	for (int i = 0; i < 2; i++) {
		size_t sl = strlen(suffixes[i]);
		if (n > sl && strcmp(key + n - sl, suffixes[i]) == 0 && n - sl < base_size) {
			memcpy(base, key, n - sl);
			base[n - sl] = '\0';
			f = mg_schema_field(sec, base);
			if (f && (f->flags & MG_FF_SECRET)) {
				*secret_variant = true;
				return f;
			}
		}
	}
	return NULL;
}

static void apply_one(struct env_ctx *ec, const char *name, const char *value)
{
	char segs[MAX_SEGMENTS][64];
	size_t nseg = 0;
	const char *p = name + strlen(ENV_PREFIX);
	while (*p) {
		const char *sep = strstr(p, "__");
		size_t len = sep ? (size_t)(sep - p) : strlen(p);
		if (nseg == MAX_SEGMENTS || len == 0 || len >= sizeof segs[0]) {
			env_error(ec, "", "malformed override name");
			return;
		}
		for (size_t i = 0; i < len; i++) {
			char c = p[i];
			segs[nseg][i] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
		}
		segs[nseg][len] = '\0';
		nseg++;
		p += len;
		if (sep)
			p += 2;
	}

	const struct mg_section *sec = &mg_schema_root;
	struct mg_cnode *table = mg_cdoc_root(ec->doc);
	char path[512] = "";
	for (size_t i = 0; i < nseg; i++) {
		bool last = i + 1 == nseg;
		char base[64];
		bool variant = false;
		const struct mg_field *f =
		    last ? find_leaf(sec, segs[i], &variant, base, sizeof base)
		         : mg_schema_field(sec, segs[i]);
		size_t pl = strlen(path);
		snprintf(path + pl, sizeof path - pl, "%s%s", pl ? "." : "", segs[i]);
		if (!f) {
			const char *names[64];
			size_t nn = 0;
			for (size_t k = 0; k < sec->n_fields && nn < 64; k++)
				names[nn++] = sec->fields[k].name;
			const char *hint = mg_decode_suggest(segs[i], names, nn);
			if (hint)
				env_error(ec, path, "no such key \"%s\" (did you mean \"%s\"?)",
				          segs[i], hint);
			else
				env_error(ec, path, "no such key \"%s\"", segs[i]);
			return;
		}
		if (last) {
			if (f->type == MG_F_TABLE || f->type == MG_F_TABLE_ARRAY ||
			    f->type == MG_F_MAP || f->type == MG_F_MAP_STRINGS) {
				make_value(ec, f, false, value, path);
				return;
			}
			struct mg_cnode *v = make_value(ec, f, variant, value, path);
			if (!v)
				return;
			if (f->flags & MG_FF_SECRET) {
				char k[80];
				mg_cnode_remove(ec->doc, table, base, strlen(base));
				snprintf(k, sizeof k, "%s_env", base);
				mg_cnode_remove(ec->doc, table, k, strlen(k));
				snprintf(k, sizeof k, "%s_file", base);
				mg_cnode_remove(ec->doc, table, k, strlen(k));
			} else {
				mg_cnode_remove(ec->doc, table, segs[i], strlen(segs[i]));
			}
			mg_cnode_set(ec->doc, table, segs[i], strlen(segs[i]), v);
			return;
		}
		struct mg_cnode *child = mg_cnode_getz(ec->doc, table, segs[i]);
		if (f->type == MG_F_TABLE) {
			if (!child) {
				child = new_node(ec, MG_CNODE_TABLE);
				if (!child || mg_cnode_set(ec->doc, table, segs[i], strlen(segs[i]),
				                           child) != 0)
					return;
			} else if (child->type != MG_CNODE_TABLE) {
				env_error(ec, path,
				          "cannot override inside a value that is not a table");
				return;
			}
			table = child;
			sec = f->sub;
		} else if (f->type == MG_F_TABLE_ARRAY) {
			int64_t idx;
			i++;
			if (i + 1 >= nseg || mg_parse_i64(segs[i], 0, 100000, &idx) < 0) {
				env_error(ec, path,
				          "expected an index after %s (e.g. %s__0__KEY) and a key",
				          segs[i - 1], segs[i - 1]);
				return;
			}
			pl = strlen(path);
			snprintf(path + pl, sizeof path - pl, "[%s]", segs[i]);
			struct mg_cnode *item = NULL;
			if (child && child->type == MG_CNODE_ARRAY) {
				item = child->first;
				for (int64_t k = 0; item && k < idx; k++)
					item = item->next;
			}
			if (!item || item->type != MG_CNODE_TABLE) {
				env_error(ec, path,
				          "no entry %lld in the file to override; entries can only "
				          "be changed, not added, from the environment",
				          (long long)idx);
				return;
			}
			table = item;
			sec = f->sub;
		} else {
			env_error(ec, path, "\"%s\" is a value, not a section", segs[i]);
			return;
		}
	}
}

size_t mg_schema_apply_env(struct mg_cdoc *doc, char *const *envp, struct mg_diag *diag)
{
	struct env_ctx ec = { .doc = doc, .diag = diag };
	for (; envp && *envp; envp++) {
		const char *e = *envp;
		if (strncmp(e, ENV_PREFIX, strlen(ENV_PREFIX)) != 0)
			continue;
		const char *eq = strchr(e, '=');
		if (!eq)
			continue;
		size_t nlen = (size_t)(eq - e);
		char name[256];
		if (nlen >= sizeof name)
			continue;
		memcpy(name, e, nlen);
		name[nlen] = '\0';
		if (!strstr(name + strlen(ENV_PREFIX), "__"))
			continue;
		char label[300];
		snprintf(label, sizeof label, "env %s", name);
		ec.label = mg_cdoc_strndup(doc, label, strlen(label));
		if (!ec.label)
			break;
		apply_one(&ec, name, eq + 1);
	}
	return ec.errors;
}
