/*
 * template.c - `init` templates (TOML, YAML) and the Markdown configuration
 * reference, both generated from the schema table so they never drift.
 *
 * Rules: a key with a default is written with it; a key without one is
 * written commented out with its example, unless flagged MG_FF_TEMPLATE
 * (the upstream command, so the template runs as written). Optional
 * sections (auth.jwt, oauth, mtls) and arrays of tables are written fully
 * commented out. The result must pass `validate` (a unit test checks it).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/schema.h"
#include "util/buf.h"

static void indent(struct mg_buf *b, int depth, bool commented)
{
	if (commented)
		mg_buf_puts(b, "# ");
	for (int i = 0; i < depth; i++)
		mg_buf_puts(b, "  ");
}

static void help_line(struct mg_buf *b, const char *help, int depth, bool yaml)
{
	if (!help)
		return;
	/* Wrap at ~90 columns. */
	const char *p = help;
	while (*p) {
		if (yaml)
			for (int i = 0; i < depth; i++)
				mg_buf_puts(b, "  ");
		mg_buf_puts(b, "# ");
		size_t len = strlen(p);
		if (len > 86) {
			size_t cut = 86;
			while (cut > 20 && p[cut] != ' ')
				cut--;
			len = cut;
		}
		mg_buf_append(b, p, len);
		mg_buf_putc(b, '\n');
		p += len;
		while (*p == ' ')
			p++;
	}
}

/* The text written for a value: the default, else the example. */
static bool field_value(const struct mg_field *f, struct mg_buf *out, bool yaml)
{
	const char *v = f->def;
	bool from_default = v != NULL;
	if (!v)
		v = f->example;
	if (!v)
		return false;
	bool quote = (f->type == MG_F_STRING || f->type == MG_F_ENUM) && v[0] != '"';
	if (quote)
		mg_buf_printf(out, "\"%s\"", v);
	else if (yaml && strstr(v, " = ")) {
		for (const char *p = v; *p; p++) {
			if (strncmp(p, " = ", 3) == 0) {
				mg_buf_puts(out, ": ");
				p += 2;
			} else {
				mg_buf_putc(out, *p);
			}
		}
	} else {
		mg_buf_puts(out, v);
	}
	return from_default;
}

static void toml_section(struct mg_buf *b, const struct mg_section *sec, const char *path,
                         bool commented, bool array);

static void toml_fields(struct mg_buf *b, const struct mg_section *sec, bool commented)
{
	for (size_t i = 0; i < sec->n_fields; i++) {
		const struct mg_field *f = &sec->fields[i];
		if (f->type == MG_F_TABLE || f->type == MG_F_TABLE_ARRAY)
			continue;
		struct mg_buf v;
		mg_buf_init(&v, 0);
		bool from_default = field_value(f, &v, false);
		help_line(b, f->help, 0, false);
		bool off = commented || (!from_default && !(f->flags & MG_FF_TEMPLATE) &&
		                         !(f->flags & MG_FF_REQUIRED));
		if (commented && (f->flags & MG_FF_REQUIRED))
			off = true;
		mg_buf_printf(b, "%s%s = %s\n", off ? "# " : "", f->name, v.data ? v.data : "\"\"");
		mg_buf_free(&v);
	}
}

static void toml_section(struct mg_buf *b, const struct mg_section *sec, const char *path,
                         bool commented, bool array)
{
	if (path[0]) {
		mg_buf_putc(b, '\n');
		help_line(b, sec->help, 0, false);
		mg_buf_printf(b, "%s%s%s%s\n", commented ? "# " : "", array ? "[[" : "[", path,
		              array ? "]]" : "]");
	}
	toml_fields(b, sec, commented);
	for (size_t i = 0; i < sec->n_fields; i++) {
		const struct mg_field *f = &sec->fields[i];
		if (f->type != MG_F_TABLE && f->type != MG_F_TABLE_ARRAY)
			continue;
		char sub[128];
		snprintf(sub, sizeof sub, "%s%s%s", path, path[0] ? "." : "", f->name);
		bool hide = commented || f->type == MG_F_TABLE_ARRAY || f->sub->template_hidden;
		toml_section(b, f->sub, sub, hide, f->type == MG_F_TABLE_ARRAY);
	}
}

static void yaml_section(struct mg_buf *b, const struct mg_section *sec, int depth, bool commented,
                         bool array)
{
	bool first_item = true;
	for (size_t i = 0; i < sec->n_fields; i++) {
		const struct mg_field *f = &sec->fields[i];
		if (f->type == MG_F_TABLE || f->type == MG_F_TABLE_ARRAY)
			continue;
		struct mg_buf v;
		mg_buf_init(&v, 0);
		bool from_default = field_value(f, &v, true);
		help_line(b, f->help, commented ? 0 : depth, true);
		bool off = commented || (!from_default && !(f->flags & MG_FF_TEMPLATE) &&
		                         !(f->flags & MG_FF_REQUIRED));
		if (array) {
			indent(b, depth - 1, off);
			mg_buf_puts(b, first_item ? "- " : "  ");
			first_item = false;
		} else {
			indent(b, depth, off);
		}
		mg_buf_printf(b, "%s: %s\n", f->name, v.data ? v.data : "\"\"");
		mg_buf_free(&v);
	}
	for (size_t i = 0; i < sec->n_fields; i++) {
		const struct mg_field *f = &sec->fields[i];
		if (f->type != MG_F_TABLE && f->type != MG_F_TABLE_ARRAY)
			continue;
		bool hide = commented || f->type == MG_F_TABLE_ARRAY || f->sub->template_hidden;
		if (depth == 0)
			mg_buf_putc(b, '\n');
		help_line(b, f->sub->help, hide ? 0 : depth, true);
		indent(b, depth, hide);
		mg_buf_printf(b, "%s:\n", f->name);
		yaml_section(b, f->sub, f->type == MG_F_TABLE_ARRAY ? depth + 2 : depth + 1, hide,
		             f->type == MG_F_TABLE_ARRAY);
	}
}

char *mg_schema_template(enum mg_config_format format)
{
	struct mg_buf b;
	mg_buf_init(&b, 0);
	mg_buf_puts(&b, "# mcp-guard configuration, written by `mcp-guard init`.\n"
	                "# Every key is listed with its default; keys without a default are\n"
	                "# commented out. Check it with `mcp-guard validate`; the reference is\n"
	                "# docs/configuration.md. Any key can be overridden from the environment:\n"
	                "# MCP_GUARD_SERVER__PORT=8080 sets server.port.\n");
	if (format == MG_CONFIG_YAML)
		yaml_section(&b, &mg_schema_root, 0, false, false);
	else
		toml_section(&b, &mg_schema_root, "", false, false);
	return mg_buf_steal(&b);
}

/* ---- reference ------------------------------------------------------------------------ */

static void md_escape(struct mg_buf *b, const char *s)
{
	for (; s && *s; s++) {
		if (*s == '|')
			mg_buf_puts(b, "\\|");
		else
			mg_buf_putc(b, *s);
	}
}

static void md_type(struct mg_buf *b, const struct mg_field *f)
{
	switch (f->type) {
	case MG_F_BOOL:
		mg_buf_puts(b, "boolean");
		break;
	case MG_F_INT:
		mg_buf_printf(b, "integer, %lld–%lld", (long long)f->min, (long long)f->max);
		break;
	case MG_F_DOUBLE:
		mg_buf_printf(b, "number, %g–%g", f->dmin, f->dmax);
		break;
	case MG_F_STRING:
		mg_buf_puts(b, f->flags & MG_FF_URL    ? "URL"
		               : f->flags & MG_FF_PATH ? "path"
		               : f->flags & MG_FF_FILE ? "file"
		                                       : "string");
		if (f->flags & MG_FF_SECRET)
			mg_buf_printf(b, " (secret: or `%s_env`, `%s_file`)", f->name, f->name);
		break;
	case MG_F_ENUM:
		for (size_t i = 0; f->enums[i]; i++)
			mg_buf_printf(b, "%s`%s`", i ? " \\| " : "", f->enums[i]);
		break;
	case MG_F_STRINGS:
		if (f->flags & MG_FF_LIST_ENUM) {
			mg_buf_puts(b, "list of ");
			for (size_t i = 0; f->enums[i]; i++)
				mg_buf_printf(b, "%s`%s`", i ? ", " : "", f->enums[i]);
		} else {
			mg_buf_puts(b, "list of strings");
		}
		break;
	case MG_F_MAP:
		mg_buf_puts(b, "table of strings");
		if (f->flags & MG_FF_SECRET)
			mg_buf_printf(b, " (secret values: or tables `%s_env`, `%s_file`)", f->name,
			              f->name);
		break;
	case MG_F_MAP_STRINGS:
		mg_buf_puts(b, "table of string lists");
		break;
	default:
		break;
	}
	if (f->flags & MG_FF_REQUIRED)
		mg_buf_puts(b, ", **required**");
}

static void md_section(struct mg_buf *b, const struct mg_section *sec, const char *path, bool array,
                       const char *env)
{
	bool has_leaf = false;
	for (size_t i = 0; i < sec->n_fields; i++)
		has_leaf |=
		    sec->fields[i].type != MG_F_TABLE && sec->fields[i].type != MG_F_TABLE_ARRAY;
	if (path[0] && has_leaf) {
		mg_buf_printf(b, "\n### `%s%s%s`\n\n", array ? "[[" : "[", path,
		              array ? "]]" : "]");
		md_escape(b, sec->help);
		mg_buf_puts(b, "\n\n| Key | Type | Default | Description |\n|---|---|---|---|\n");
		for (size_t i = 0; i < sec->n_fields; i++) {
			const struct mg_field *f = &sec->fields[i];
			if (f->type == MG_F_TABLE || f->type == MG_F_TABLE_ARRAY)
				continue;
			mg_buf_printf(b, "| `%s` | ", f->name);
			md_type(b, f);
			mg_buf_puts(b, " | ");
			if (f->def && (f->type == MG_F_STRING || f->type == MG_F_ENUM))
				mg_buf_printf(b, "`\"%s\"`", f->def);
			else if (f->def)
				mg_buf_printf(b, "`%s`", f->def);
			else
				mg_buf_puts(b, "—");
			mg_buf_puts(b, " | ");
			md_escape(b, f->help);
			mg_buf_puts(b, " |\n");
		}
		if (env)
			mg_buf_printf(b, "\nEnvironment: `%s__<KEY>`.\n", env);
		else
			mg_buf_puts(
			    b, "\nEnvironment: entries that exist in the file can be changed "
			       "with their index, e.g. `MCP_GUARD_UPSTREAM__SERVERS__0__URL`.\n");
	}
	for (size_t i = 0; i < sec->n_fields; i++) {
		const struct mg_field *f = &sec->fields[i];
		if (f->type != MG_F_TABLE && f->type != MG_F_TABLE_ARRAY)
			continue;
		char sub[128], subenv[160];
		snprintf(sub, sizeof sub, "%s%s%s", path, path[0] ? "." : "", f->name);
		/* MCP_GUARD + "_" + SERVER for a top section, then "__" + TLS below it. */
		snprintf(subenv, sizeof subenv, "%s%s%s", env ? env : "", path[0] ? "__" : "_",
		         f->name);
		for (char *c = subenv; *c; c++)
			if (*c >= 'a' && *c <= 'z')
				*c = (char)(*c - 32);
		bool arr = f->type == MG_F_TABLE_ARRAY;
		md_section(b, f->sub, sub, arr, env && !arr ? subenv : NULL);
	}
}

char *mg_schema_reference_markdown(void)
{
	struct mg_buf b;
	mg_buf_init(&b, 0);
	md_section(&b, &mg_schema_root, "", false, "MCP_GUARD");
	return mg_buf_steal(&b);
}
