/*
 * decode.c - turns a configuration tree into `struct mg_config` by walking
 * the schema table (schema.c).
 *
 * Decoding never stops at the first problem: a bad value is reported and
 * replaced by its default so that every later error can still be found.
 * Messages say where (file:line:col), which key (dotted path), what was
 * expected and what was found.
 */
#include "config/decode.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/str.h"

#define SECRET_FILE_MAX (64 * 1024)

/* ---- diagnostics ---------------------------------------------------------------------- */

static void diag_vadd(struct mg_diag *diag, bool warning, const char *file, uint32_t line,
                      uint32_t col, const char *path, const char *fmt, va_list ap)
{
	struct mg_diag_entry *v = realloc(diag->v, (diag->n + 1) * sizeof *v);
	if (!v)
		return;
	diag->v = v;
	struct mg_diag_entry *e = &v[diag->n++];
	struct mg_buf b;
	mg_buf_init(&b, 4096);
	mg_buf_vprintf(&b, fmt, ap);
	e->msg = mg_buf_steal(&b);
	e->file = mg_strdup(file ? file : "");
	e->path = mg_strdup(path ? path : "");
	e->line = line;
	e->col = col;
	e->warning = warning;
	if (!warning)
		diag->errors++;
}

void mg_diag_add(struct mg_diag *diag, bool warning, const char *file, uint32_t line, uint32_t col,
                 const char *path, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	diag_vadd(diag, warning, file, line, col, path, fmt, ap);
	va_end(ap);
}

void mg_diag_free(struct mg_diag *d)
{
	for (size_t i = 0; i < d->n; i++) {
		free(d->v[i].file);
		free(d->v[i].path);
		free(d->v[i].msg);
	}
	free(d->v);
	d->v = NULL;
	d->n = 0;
	d->errors = 0;
}

void mg_diag_print(const struct mg_diag *d, void *fp)
{
	FILE *out = fp;
	for (size_t i = 0; i < d->n; i++) {
		const struct mg_diag_entry *e = &d->v[i];
		const char *kind = e->warning ? "warning" : "error";
		if (e->line)
			fprintf(out, "%s:%u:%u: %s: ", e->file, e->line, e->col, kind);
		else
			fprintf(out, "%s: %s: ", e->file, kind);
		if (e->path[0])
			fprintf(out, "%s: ", e->path);
		fprintf(out, "%s\n", e->msg);
	}
}

static void report(struct mg_decode *dc, bool warning, const struct mg_cnode *node, bool at_key,
                   const char *path, const char *fmt, va_list ap)
{
	const struct mg_cloc *loc = NULL;
	if (node)
		loc = at_key && node->key ? &node->key_loc : &node->loc;
	diag_vadd(dc->diag, warning, loc ? loc->file : dc->file, loc ? loc->line : 0,
	          loc ? loc->col : 0, path, fmt, ap);
	if (!warning)
		dc->errors++;
}

void mg_schema_error(struct mg_decode *dc, const struct mg_cnode *node, const char *path,
                     const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	report(dc, false, node, false, path, fmt, ap);
	va_end(ap);
}

void mg_schema_warning(struct mg_decode *dc, const struct mg_cnode *node, const char *path,
                       const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	report(dc, true, node, false, path, fmt, ap);
	va_end(ap);
}

static void error_at_key(struct mg_decode *dc, const struct mg_cnode *node, const char *path,
                         const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void error_at_key(struct mg_decode *dc, const struct mg_cnode *node, const char *path,
                         const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	report(dc, false, node, true, path, fmt, ap);
	va_end(ap);
}

/* ---- helpers -------------------------------------------------------------------------- */

void mg_decode_describe(const struct mg_cnode *n, char *out, size_t size)
{
	if (!n) {
		snprintf(out, size, "nothing");
		return;
	}
	switch (n->type) {
	case MG_CNODE_STRING: {
		char shown[48];
		size_t k = 0;
		for (size_t i = 0; i < n->len && k + 5 < sizeof shown; i++) {
			unsigned char c = (unsigned char)n->str[i];
			if (c < 0x20 || c == 0x7f || c == '"' || c == '\\') {
				int w = snprintf(shown + k, sizeof shown - k, "\\x%02x", c);
				k += w > 0 ? (size_t)w : 0;
			} else {
				shown[k++] = (char)c;
			}
		}
		shown[k] = '\0';
		snprintf(out, size, "string \"%s%s\"", shown, k < n->len ? "…" : "");
		break;
	}
	case MG_CNODE_INTEGER:
		snprintf(out, size, "integer %lld", (long long)n->i);
		break;
	case MG_CNODE_FLOAT:
		snprintf(out, size, "float %g", n->f);
		break;
	case MG_CNODE_BOOL:
		snprintf(out, size, "boolean %s", n->b ? "true" : "false");
		break;
	case MG_CNODE_TABLE:
		snprintf(out, size, "a table");
		break;
	case MG_CNODE_ARRAY:
		snprintf(out, size, "an array of %zu item%s", n->count, n->count == 1 ? "" : "s");
		break;
	case MG_CNODE_NULL:
		snprintf(out, size, "null");
		break;
	default:
		snprintf(out, size, "%s %s", mg_cnode_type_name(n->type), n->str ? n->str : "");
		break;
	}
}

char *mg_decode_join(const char *path, const char *key)
{
	struct mg_buf b;
	mg_buf_init(&b, 0);
	if (path && path[0]) {
		mg_buf_puts(&b, path);
		mg_buf_putc(&b, '.');
	}
	mg_buf_puts(&b, key);
	return mg_buf_steal(&b);
}

const char *mg_decode_getenv(char *const *envp, const char *name)
{
	size_t n = strlen(name);
	for (; envp && *envp; envp++) {
		if (strncmp(*envp, name, n) == 0 && (*envp)[n] == '=')
			return *envp + n + 1;
	}
	return NULL;
}

const char *mg_decode_suggest(const char *word, const char *const *names, size_t n)
{
	const char *best = NULL;
	size_t best_d = 3;
	size_t wl = strlen(word);
	size_t limit = wl <= 4 ? 1 : wl <= 8 ? 2 : 3;
	for (size_t i = 0; i < n && names[i]; i++) {
		size_t d = mg_str_distance(word, names[i], 8);
		if (d <= limit && d < best_d + (best ? 0 : 1)) {
			best = names[i];
			best_d = d;
		}
	}
	return best;
}

bool mg_decode_url_ok(const char *s, const char **why)
{
	const char *rest;
	if (mg_str_starts_with(s, "http://"))
		rest = s + 7;
	else if (mg_str_starts_with(s, "https://"))
		rest = s + 8;
	else {
		*why = "must start with http:// or https://";
		return false;
	}
	size_t host_len = strcspn(rest, "/?#");
	if (host_len == 0 || rest[0] == ':') {
		*why = "has no host";
		return false;
	}
	for (const char *p = s; *p; p++) {
		if ((unsigned char)*p <= 0x20 || *p == 0x7f) {
			*why = "contains a space or control character";
			return false;
		}
	}
	if (memchr(rest, '@', host_len)) {
		*why = "must not carry credentials (user:password@) - use headers or secrets";
		return false;
	}
	const char *colon = NULL;
	if (rest[0] == '[') {
		const char *close = memchr(rest, ']', host_len);
		if (!close) {
			*why = "has an unterminated IPv6 address";
			return false;
		}
		if ((size_t)(close - rest) + 1 < host_len) {
			if (close[1] != ':') {
				*why = "has characters after the IPv6 address";
				return false;
			}
			colon = close + 1;
		}
	} else {
		colon = memchr(rest, ':', host_len);
	}
	if (colon) {
		size_t plen = host_len - (size_t)(colon + 1 - rest);
		char port[8];
		if (plen == 0 || plen > 5) {
			*why = "has an invalid port";
			return false;
		}
		memcpy(port, colon + 1, plen);
		port[plen] = '\0';
		int64_t p;
		if (mg_parse_i64(port, 1, 65535, &p) < 0 || port[0] == '+' || port[0] == '-') {
			*why = "has an invalid port";
			return false;
		}
	}
	return true;
}

/* ---- field decoding ------------------------------------------------------------------- */

static void *at(void *obj, size_t off)
{
	return (char *)obj + off;
}

static bool is_optional_empty(const struct mg_field *f, const struct mg_cnode *n)
{
	return n->type == MG_CNODE_STRING && n->len == 0 && !f->def && !(f->flags & MG_FF_REQUIRED);
}

static void set_default(const struct mg_field *f, void *p)
{
	switch (f->type) {
	case MG_F_BOOL:
		*(bool *)p = f->def && strcmp(f->def, "true") == 0;
		break;
	case MG_F_INT: {
		int64_t v = 0;
		if (f->def)
			mg_parse_i64(f->def, INT64_MIN, INT64_MAX, &v);
		*(int64_t *)p = v;
		break;
	}
	case MG_F_DOUBLE: {
		double v = 0;
		if (f->def)
			mg_parse_double(f->def, &v);
		*(double *)p = v;
		break;
	}
	case MG_F_STRING:
		free(*(char **)p);
		*(char **)p = f->def ? mg_strdup(f->def) : NULL;
		break;
	case MG_F_ENUM: {
		int64_t v = 0;
		for (int64_t i = 0; f->def && f->enums[i]; i++) {
			if (strcmp(f->enums[i], f->def) == 0)
				v = i;
		}
		*(int64_t *)p = v;
		break;
	}
	default:
		break;
	}
}

static size_t enum_count(const char *const *e)
{
	size_t n = 0;
	while (e[n])
		n++;
	return n;
}

static void enum_list(const char *const *e, char *out, size_t size)
{
	size_t k = 0;
	out[0] = '\0';
	for (size_t i = 0; e[i]; i++) {
		int w = snprintf(out + k, size - k, "%s\"%s\"", i ? (e[i + 1] ? ", " : " or ") : "",
		                 e[i]);
		if (w < 0 || (size_t)w >= size - k)
			break;
		k += (size_t)w;
	}
}

static int find_enum(const char *const *e, const char *s, size_t len)
{
	for (int i = 0; e[i]; i++) {
		if (strlen(e[i]) == len && memcmp(e[i], s, len) == 0)
			return i;
	}
	return -1;
}

static void bad_enum(struct mg_decode *dc, const struct mg_field *f, const struct mg_cnode *n,
                     const char *path)
{
	char list[512], found[128];
	enum_list(f->enums, list, sizeof list);
	mg_decode_describe(n, found, sizeof found);
	const char *hint = n->type == MG_CNODE_STRING
	                       ? mg_decode_suggest(n->str, f->enums, enum_count(f->enums))
	                       : NULL;
	if (hint)
		mg_schema_error(dc, n, path, "expected one of %s, found %s (did you mean \"%s\"?)",
		                list, found, hint);
	else
		mg_schema_error(dc, n, path, "expected one of %s, found %s", list, found);
}

static void type_error(struct mg_decode *dc, const struct mg_cnode *n, const char *path,
                       const char *expected)
{
	char found[128];
	mg_decode_describe(n, found, sizeof found);
	mg_schema_error(dc, n, path, "expected %s, found %s", expected, found);
}

static bool string_ok(struct mg_decode *dc, const struct mg_cnode *n, const char *path)
{
	if (memchr(n->str, '\0', n->len)) {
		mg_schema_error(dc, n, path, "expected a string without NUL characters");
		return false;
	}
	return true;
}

static char *read_secret_file(struct mg_decode *dc, const struct mg_cnode *n, const char *path)
{
	FILE *fp = fopen(n->str, "rb");
	if (!fp) {
		mg_schema_error(dc, n, path, "cannot read secret file \"%s\": %s", n->str,
		                strerror(errno));
		return NULL;
	}
	struct mg_buf b;
	mg_buf_init(&b, SECRET_FILE_MAX);
	char chunk[4096];
	size_t r;
	bool too_big = false;
	while ((r = fread(chunk, 1, sizeof chunk, fp)) > 0) {
		if (mg_buf_append(&b, chunk, r) < 0) {
			too_big = true;
			break;
		}
	}
	fclose(fp);
	if (too_big) {
		mg_buf_free(&b);
		mg_schema_error(dc, n, path, "secret file \"%s\" is larger than %d bytes", n->str,
		                SECRET_FILE_MAX);
		return NULL;
	}
	while (b.len && (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == '\r'))
		b.data[--b.len] = '\0';
	if (b.len == 0 || memchr(b.data, '\0', b.len)) {
		mg_buf_free(&b);
		mg_schema_error(dc, n, path, "secret file \"%s\" is empty or holds NUL bytes",
		                n->str);
		return NULL;
	}
	return mg_buf_steal(&b);
}

static char *path_suffix(const char *path, const char *suffix)
{
	struct mg_buf b;
	mg_buf_init(&b, 0);
	mg_buf_puts(&b, path);
	mg_buf_puts(&b, suffix);
	return mg_buf_steal(&b);
}

/* Resolves a SECRET string from <name>, <name>_env or <name>_file. */
static void decode_secret(struct mg_decode *dc, const struct mg_field *f, char **out,
                          const struct mg_cnode *table, const char *path)
{
	char key[128];
	snprintf(key, sizeof key, "%s_env", f->name);
	const struct mg_cnode *env = table ? mg_cnode_getz(dc->doc, table, key) : NULL;
	snprintf(key, sizeof key, "%s_file", f->name);
	const struct mg_cnode *file = table ? mg_cnode_getz(dc->doc, table, key) : NULL;
	const struct mg_cnode *plain = table ? mg_cnode_getz(dc->doc, table, f->name) : NULL;
	if (!!env + !!file + !!plain > 1) {
		const struct mg_cnode *second = plain && env ? env : file;
		error_at_key(dc, second, path, "set only one of %s, %s_env and %s_file", f->name,
		             f->name, f->name);
		return;
	}
	if (env) {
		char *epath = path_suffix(path, "_env");
		if (env->type != MG_CNODE_STRING || env->len == 0)
			type_error(dc, env, epath, "the name of an environment variable");
		else if (string_ok(dc, env, epath)) {
			const char *v = mg_decode_getenv(dc->envp, env->str);
			if (!v || !*v)
				mg_schema_error(dc, env, epath,
				                "environment variable %s is not set or empty",
				                env->str);
			else
				*out = mg_strdup(v);
		}
		free(epath);
	} else if (file) {
		char *fpath = path_suffix(path, "_file");
		if (file->type != MG_CNODE_STRING || file->len == 0)
			type_error(dc, file, fpath, "a file path");
		else if (string_ok(dc, file, fpath))
			*out = read_secret_file(dc, file, fpath);
		free(fpath);
	} else if (plain) {
		if (plain->type != MG_CNODE_STRING)
			type_error(dc, plain, path, "a string");
		else if (plain->len && string_ok(dc, plain, path))
			*out = mg_strndup(plain->str, plain->len);
	}
}

/* A SECRET map (headers): entries from <name> (values as written),
 * <name>_env (values name environment variables) and <name>_file (values
 * are files to read), merged; one key in two of them is an error. */
static void decode_secret_map(struct mg_decode *dc, const struct mg_field *f, struct mg_kvv *m,
                              const struct mg_cnode *table, const char *path)
{
	static const char *const suffix[3] = { "", "_env", "_file" };
	const struct mg_cnode *src[3];
	size_t total = 0;
	for (int k = 0; k < 3; k++) {
		char key[128];
		snprintf(key, sizeof key, "%s%s", f->name, suffix[k]);
		src[k] = table ? mg_cnode_getz(dc->doc, table, key) : NULL;
		if (src[k] && src[k]->type == MG_CNODE_NULL)
			src[k] = NULL;
		if (src[k] && src[k]->type != MG_CNODE_TABLE) {
			char *kp = path_suffix(path, suffix[k]);
			type_error(dc, src[k], kp,
			           k == 0   ? "a table of strings"
			           : k == 1 ? "a table of environment variable names"
			                    : "a table of file paths");
			free(kp);
			src[k] = NULL;
		}
		if (src[k])
			total += src[k]->count;
	}
	if (!total)
		return;
	m->v = calloc(total, sizeof *m->v);
	if (!m->v)
		return;
	for (int k = 0; k < 3; k++) {
		if (!src[k])
			continue;
		char *spath = path_suffix(path, suffix[k]);
		for (const struct mg_cnode *c = src[k]->first; c; c = c->next) {
			char *kpath = mg_decode_join(spath, c->key);
			char *value = NULL;
			bool dup = false;
			for (size_t i = 0; i < m->n; i++)
				if (strlen(m->v[i].key) == c->key_len &&
				    strncasecmp(m->v[i].key, c->key, c->key_len) == 0)
					dup = true;
			if (memchr(c->key, '\0', c->key_len) || c->key_len == 0)
				error_at_key(dc, c, kpath, "keys must be non-empty, without NUL");
			else if (dup)
				error_at_key(dc, c, kpath,
				             "%.*s is set twice (in %s, %s_env or %s_file)",
				             (int)c->key_len, c->key, f->name, f->name, f->name);
			else if (c->type != MG_CNODE_STRING)
				type_error(dc, c, kpath, "a string");
			else if (string_ok(dc, c, kpath)) {
				if (k == 0)
					value = mg_strndup(c->str, c->len);
				else if (k == 2)
					value = read_secret_file(dc, c, kpath);
				else {
					const char *v = mg_decode_getenv(dc->envp, c->str);
					if (!v || !*v)
						mg_schema_error(
						    dc, c, kpath,
						    "environment variable %s is not set or "
						    "empty",
						    c->str);
					else
						value = mg_strdup(v);
				}
			}
			if (value) {
				m->v[m->n].key = mg_strndup(c->key, c->key_len);
				m->v[m->n].value = value;
				m->n++;
			}
			free(kpath);
		}
		free(spath);
	}
}

static void decode_strv(struct mg_decode *dc, const struct mg_field *f, struct mg_strv *out,
                        const struct mg_cnode *n, const char *path)
{
	if (n->type == MG_CNODE_STRING) {
		if (!string_ok(dc, n, path))
			return;
		out->v = calloc(1, sizeof(char *));
		if (!out->v)
			return;
		out->v[0] = mg_strndup(n->str, n->len);
		out->n = 1;
		out->set = true;
	} else if (n->type == MG_CNODE_ARRAY) {
		out->set = true;
		out->v = calloc(n->count ? n->count : 1, sizeof(char *));
		if (!out->v)
			return;
		size_t i = 0;
		for (const struct mg_cnode *c = n->first; c; c = c->next, i++) {
			char item[32];
			snprintf(item, sizeof item, "[%zu]", i);
			char *ipath = malloc(strlen(path) + sizeof item);
			if (!ipath)
				continue;
			memcpy(ipath, path, strlen(path));
			memcpy(ipath + strlen(path), item, strlen(item) + 1);
			if (c->type != MG_CNODE_STRING) {
				type_error(dc, c, ipath, "a string");
			} else if (string_ok(dc, c, ipath)) {
				if (f && (f->flags & MG_FF_LIST_ENUM) &&
				    find_enum(f->enums, c->str, c->len) < 0)
					bad_enum(dc, f, c, ipath);
				else
					out->v[out->n++] = mg_strndup(c->str, c->len);
			}
			free(ipath);
		}
	} else {
		type_error(dc, n, path, "an array of strings");
	}
}

static void decode_section(struct mg_decode *dc, const struct mg_section *sec, void *obj,
                           const struct mg_cnode *node, const char *path);

static void decode_field(struct mg_decode *dc, const struct mg_field *f, void *obj,
                         const struct mg_cnode *table, const char *path);

static void decode_field(struct mg_decode *dc, const struct mg_field *f, void *obj,
                         const struct mg_cnode *table, const char *path)
{
	void *p = at(obj, f->off);
	const struct mg_cnode *n = table ? mg_cnode_getz(dc->doc, table, f->name) : NULL;
	char *fpath = mg_decode_join(path, f->name);
	char found[128], expect[160];

	if (f->type == MG_F_STRING && (f->flags & MG_FF_SECRET)) {
		decode_secret(dc, f, (char **)p, table, fpath);
		goto out;
	}
	if (f->type == MG_F_MAP && (f->flags & MG_FF_SECRET)) {
		decode_secret_map(dc, f, (struct mg_kvv *)p, table, fpath);
		goto out;
	}
	if (f->type == MG_F_TABLE) {
		/* YAML writes a section whose keys are all commented out as null. */
		decode_section(dc, f->sub, p, n && n->type == MG_CNODE_NULL ? NULL : n, fpath);
		goto out;
	}
	if (!n || n->type == MG_CNODE_NULL) {
		set_default(f, p);
		if ((f->flags & MG_FF_REQUIRED) && table)
			mg_schema_error(dc, table, path[0] ? path : f->name,
			                "missing required key \"%s\" (%s)", f->name, f->help);
		goto out;
	}
	switch (f->type) {
	case MG_F_BOOL:
		if (n->type != MG_CNODE_BOOL)
			type_error(dc, n, fpath, "a boolean (true or false)");
		else
			*(bool *)p = n->b;
		if (n->type != MG_CNODE_BOOL)
			set_default(f, p);
		break;
	case MG_F_INT:
		set_default(f, p);
		if (n->type != MG_CNODE_INTEGER || n->i < f->min || n->i > f->max) {
			snprintf(expect, sizeof expect, "an integer from %lld to %lld",
			         (long long)f->min, (long long)f->max);
			type_error(dc, n, fpath, expect);
		} else {
			*(int64_t *)p = n->i;
		}
		break;
	case MG_F_DOUBLE: {
		set_default(f, p);
		double v;
		if (n->type == MG_CNODE_INTEGER)
			v = (double)n->i;
		else if (n->type == MG_CNODE_FLOAT)
			v = n->f;
		else
			v = NAN;
		if (!(v >= f->dmin && v <= f->dmax)) {
			snprintf(expect, sizeof expect, "a number from %g to %g", f->dmin, f->dmax);
			type_error(dc, n, fpath, expect);
		} else {
			*(double *)p = v;
		}
		break;
	}
	case MG_F_STRING: {
		set_default(f, p);
		if (n->type != MG_CNODE_STRING) {
			type_error(dc, n, fpath, "a string");
			break;
		}
		if (!string_ok(dc, n, fpath))
			break;
		if (is_optional_empty(f, n)) {
			free(*(char **)p);
			*(char **)p = NULL;
			break;
		}
		if (n->len == 0 && (f->flags & MG_FF_REQUIRED)) {
			mg_schema_error(dc, n, fpath, "must not be empty");
			break;
		}
		const char *why = NULL;
		if ((f->flags & MG_FF_URL) && !mg_decode_url_ok(n->str, &why)) {
			mg_decode_describe(n, found, sizeof found);
			mg_schema_error(dc, n, fpath, "expected an http(s) URL, found %s: it %s",
			                found, why);
			break;
		}
		if ((f->flags & MG_FF_PATH) && n->str[0] != '/') {
			mg_decode_describe(n, found, sizeof found);
			mg_schema_error(dc, n, fpath, "expected a path starting with '/', found %s",
			                found);
			break;
		}
		free(*(char **)p);
		*(char **)p = mg_strndup(n->str, n->len);
		break;
	}
	case MG_F_ENUM: {
		set_default(f, p);
		int idx = n->type == MG_CNODE_STRING ? find_enum(f->enums, n->str, n->len) : -1;
		if (idx < 0)
			bad_enum(dc, f, n, fpath);
		else
			*(int64_t *)p = idx;
		break;
	}
	case MG_F_STRINGS:
		decode_strv(dc, f, p, n, fpath);
		break;
	case MG_F_MAP: {
		struct mg_kvv *m = p;
		if (n->type != MG_CNODE_TABLE) {
			type_error(dc, n, fpath, "a table of strings");
			break;
		}
		m->v = calloc(n->count ? n->count : 1, sizeof *m->v);
		if (!m->v)
			break;
		for (const struct mg_cnode *c = n->first; c; c = c->next) {
			char *kpath = mg_decode_join(fpath, c->key);
			if (memchr(c->key, '\0', c->key_len) || c->key_len == 0)
				error_at_key(dc, c, kpath, "keys must be non-empty, without NUL");
			else if (c->type != MG_CNODE_STRING)
				type_error(dc, c, kpath, "a string");
			else if (string_ok(dc, c, kpath)) {
				m->v[m->n].key = mg_strndup(c->key, c->key_len);
				m->v[m->n].value = mg_strndup(c->str, c->len);
				m->n++;
			}
			free(kpath);
		}
		break;
	}
	case MG_F_MAP_STRINGS: {
		struct mg_kstrvv *m = p;
		if (n->type != MG_CNODE_TABLE) {
			type_error(dc, n, fpath, "a table of string arrays");
			break;
		}
		m->v = calloc(n->count ? n->count : 1, sizeof *m->v);
		if (!m->v)
			break;
		for (const struct mg_cnode *c = n->first; c; c = c->next) {
			char *kpath = mg_decode_join(fpath, c->key);
			if (memchr(c->key, '\0', c->key_len) || c->key_len == 0) {
				error_at_key(dc, c, kpath, "keys must be non-empty, without NUL");
			} else {
				struct mg_kstrv *e = &m->v[m->n++];
				e->key = mg_strndup(c->key, c->key_len);
				decode_strv(dc, NULL, &e->value, c, kpath);
			}
			free(kpath);
		}
		break;
	}
	case MG_F_TABLE_ARRAY: {
		void **arr = p;
		size_t *count = at(obj, f->count_off);
		if (n->type != MG_CNODE_ARRAY) {
			type_error(dc, n, fpath, "an array of tables");
			break;
		}
		*arr = calloc(n->count ? n->count : 1, f->sub->size);
		if (!*arr)
			break;
		size_t i = 0;
		for (const struct mg_cnode *c = n->first; c; c = c->next, i++) {
			char ipath[256];
			snprintf(ipath, sizeof ipath, "%s[%zu]", fpath, i);
			decode_section(dc, f->sub, (char *)*arr + i * f->sub->size, c, ipath);
		}
		*count = n->count;
		break;
	}
	case MG_F_TABLE:
		break;
	}
out:
	free(fpath);
}

static bool secret_variant(const struct mg_section *sec, const char *key, size_t len)
{
	for (size_t i = 0; i < sec->n_fields; i++) {
		const struct mg_field *f = &sec->fields[i];
		if (!(f->flags & MG_FF_SECRET))
			continue;
		size_t fl = strlen(f->name);
		if (len == fl + 4 && memcmp(key, f->name, fl) == 0 &&
		    memcmp(key + fl, "_env", 4) == 0)
			return true;
		if (len == fl + 5 && memcmp(key, f->name, fl) == 0 &&
		    memcmp(key + fl, "_file", 5) == 0)
			return true;
	}
	return false;
}

static void check_unknown_keys(struct mg_decode *dc, const struct mg_section *sec,
                               const struct mg_cnode *node, const char *path)
{
	const char *names[64];
	size_t nn = 0;
	for (size_t i = 0; i < sec->n_fields && nn < 64; i++)
		names[nn++] = sec->fields[i].name;
	for (const struct mg_cnode *c = node->first; c; c = c->next) {
		bool known = false;
		for (size_t i = 0; i < sec->n_fields; i++) {
			if (strlen(sec->fields[i].name) == c->key_len &&
			    memcmp(sec->fields[i].name, c->key, c->key_len) == 0)
				known = true;
		}
		if (known || secret_variant(sec, c->key, c->key_len))
			continue;
		char shown[80];
		size_t k = 0;
		for (size_t i = 0; i < c->key_len && k + 5 < sizeof shown; i++) {
			unsigned char ch = (unsigned char)c->key[i];
			if (ch < 0x20 || ch == 0x7f) {
				int w = snprintf(shown + k, sizeof shown - k, "\\x%02x", ch);
				k += w > 0 ? (size_t)w : 0;
			} else {
				shown[k++] = (char)ch;
			}
		}
		shown[k] = '\0';
		char *kpath = mg_decode_join(path, shown);
		const char *hint = mg_decode_suggest(shown, names, nn);
		if (hint)
			error_at_key(dc, c, kpath, "unknown key \"%s\" (did you mean \"%s\"?)",
			             shown, hint);
		else if (path[0])
			error_at_key(dc, c, kpath, "unknown key \"%s\" in [%s]", shown, sec->name);
		else
			error_at_key(dc, c, kpath, "unknown section or key \"%s\"", shown);
		free(kpath);
	}
}

static void decode_section(struct mg_decode *dc, const struct mg_section *sec, void *obj,
                           const struct mg_cnode *node, const char *path)
{
	if (node && node->type != MG_CNODE_TABLE) {
		type_error(dc, node, path, "a table");
		node = NULL;
	}
	if (node && sec->present_off != SIZE_MAX)
		*(bool *)at(obj, sec->present_off) = true;
	if (node)
		check_unknown_keys(dc, sec, node, path);
	for (size_t i = 0; i < sec->n_fields; i++)
		decode_field(dc, &sec->fields[i], obj, node, path);
	if (sec->check)
		sec->check(dc, obj, node, path);
}

size_t mg_schema_decode(struct mg_cdoc *doc, struct mg_config *cfg, char *const *envp,
                        struct mg_diag *diag)
{
	struct mg_decode dc = {
		.doc = doc,
		.diag = diag,
		.envp = envp,
		.file = mg_cdoc_file(doc),
	};
	decode_section(&dc, &mg_schema_root, cfg, mg_cdoc_root(doc), "");
	return dc.errors;
}

void mg_schema_defaults(struct mg_config *cfg)
{
	struct mg_diag diag = { 0 };
	struct mg_cdoc *doc = mg_cdoc_new("<defaults>");
	if (doc)
		mg_schema_decode(doc, cfg, NULL, &diag);
	mg_cdoc_free(doc);
	mg_diag_free(&diag);
}

void mg_schema_free(const struct mg_section *sec, void *obj)
{
	for (size_t i = 0; i < sec->n_fields; i++) {
		const struct mg_field *f = &sec->fields[i];
		void *p = at(obj, f->off);
		switch (f->type) {
		case MG_F_STRING:
			free(*(char **)p);
			*(char **)p = NULL;
			break;
		case MG_F_STRINGS: {
			struct mg_strv *v = p;
			for (size_t k = 0; k < v->n; k++)
				free(v->v[k]);
			free(v->v);
			memset(v, 0, sizeof *v);
			break;
		}
		case MG_F_MAP: {
			struct mg_kvv *m = p;
			for (size_t k = 0; k < m->n; k++) {
				free(m->v[k].key);
				free(m->v[k].value);
			}
			free(m->v);
			memset(m, 0, sizeof *m);
			break;
		}
		case MG_F_MAP_STRINGS: {
			struct mg_kstrvv *m = p;
			for (size_t k = 0; k < m->n; k++) {
				free(m->v[k].key);
				for (size_t j = 0; j < m->v[k].value.n; j++)
					free(m->v[k].value.v[j]);
				free(m->v[k].value.v);
			}
			free(m->v);
			memset(m, 0, sizeof *m);
			break;
		}
		case MG_F_TABLE:
			mg_schema_free(f->sub, p);
			break;
		case MG_F_TABLE_ARRAY: {
			char *arr = *(char **)p;
			size_t *count = at(obj, f->count_off);
			for (size_t k = 0; arr && k < *count; k++)
				mg_schema_free(f->sub, arr + k * f->sub->size);
			free(arr);
			*(char **)p = NULL;
			*count = 0;
			break;
		}
		default:
			break;
		}
	}
}
