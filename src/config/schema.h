/*
 * schema.h - the one table that describes every configuration key.
 *
 * Each field names its key, type, default, range or enum values, help text
 * and where it lives in `struct mg_config`. From this table alone come:
 * decoding and validation (decode.c), the `init` templates and the
 * configuration reference in docs/configuration.md (template.c), and the
 * MCP_GUARD_* environment overrides (env.c). Add a key here and all four
 * follow; they cannot drift apart.
 */
#ifndef MG_CONFIG_SCHEMA_H
#define MG_CONFIG_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "config/tree.h"

enum mg_ftype {
	MG_F_BOOL,        /* bool */
	MG_F_INT,         /* int64_t in [min, max] */
	MG_F_DOUBLE,      /* double in [dmin, dmax]; integers accepted */
	MG_F_STRING,      /* char * (NULL when absent without default) */
	MG_F_ENUM,        /* int64_t index into `enums` */
	MG_F_STRINGS,     /* struct mg_strv; a single string is accepted as a list of one */
	MG_F_MAP,         /* struct mg_kvv: table of strings */
	MG_F_MAP_STRINGS, /* struct mg_kstrvv: table of string lists */
	MG_F_TABLE,       /* nested struct at `off`, described by `sub` */
	MG_F_TABLE_ARRAY, /* pointer at `off`, size_t count at `count_off`, elements `sub` */
};

enum {
	MG_FF_REQUIRED = 1u << 0,  /* must be written (errors name the key) */
	MG_FF_SECRET = 1u << 1,    /* may come from <key>_env / <key>_file; never printed */
	MG_FF_URL = 1u << 2,       /* http(s) URL with a host */
	MG_FF_PATH = 1u << 3,      /* URL path: starts with '/' */
	MG_FF_FILE = 1u << 4,      /* a file that must be readable */
	MG_FF_LIST_ENUM = 1u << 5, /* STRINGS whose items must be in `enums` */
	MG_FF_TEMPLATE = 1u << 6   /* `init` writes the example uncommented */
};

struct mg_section;

struct mg_field {
	const char *name;
	enum mg_ftype type;
	size_t off;
	size_t count_off;         /* TABLE_ARRAY only */
	const char *def;          /* default as text ("" = empty string); NULL = none */
	int64_t min, max;         /* INT */
	double dmin, dmax;        /* DOUBLE */
	const char *const *enums; /* ENUM, LIST_ENUM; NULL-terminated */
	const struct mg_section *sub;
	unsigned flags;
	const char *help;    /* one sentence, shown in templates and the reference */
	const char *example; /* value shown (commented out) in templates when no default */
};

/* Cross-field checks after a section decoded: `obj` is the struct, `node`
 * the section's table (NULL when absent), `path` its key path. Report with
 * mg_schema_error(). */
struct mg_decode;
typedef void (*mg_section_check_fn)(struct mg_decode *dc, void *obj, const struct mg_cnode *node,
                                    const char *path);

struct mg_section {
	const char *name;   /* for messages and the reference */
	size_t size;        /* sizeof the struct (for arrays) */
	size_t present_off; /* offset of `bool present`, or SIZE_MAX */
	const struct mg_field *fields;
	size_t n_fields;
	const char *help;
	mg_section_check_fn check;
	bool template_hidden; /* not written by `init` (optional section shown commented) */
};

/* The root section (`struct mg_config`). */
extern const struct mg_section mg_schema_root;

/* Finds the field `name` in `sec`, or NULL. */
const struct mg_field *mg_schema_field(const struct mg_section *sec, const char *name);

/* Decodes `doc` into `cfg` (which must be zeroed), filling defaults, running
 * every check. `envp` ("NAME=value" list, NULL = empty) resolves <secret>_env
 * keys. Problems go to `diag`. Returns the number of errors. */
size_t mg_schema_decode(struct mg_cdoc *doc, struct mg_config *cfg, char *const *envp,
                        struct mg_diag *diag);

/* Fills `cfg` with all defaults, as if decoding an empty document. */
void mg_schema_defaults(struct mg_config *cfg);

/* Frees every owned member of the object `obj` described by `sec`. */
void mg_schema_free(const struct mg_section *sec, void *obj);

/* Reports an error at `node` (or `fallback` when node is NULL). printf-style. */
void mg_schema_error(struct mg_decode *dc, const struct mg_cnode *node, const char *path,
                     const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void mg_schema_warning(struct mg_decode *dc, const struct mg_cnode *node, const char *path,
                       const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Appends one entry to `diag`. */
void mg_diag_add(struct mg_diag *diag, bool warning, const char *file, uint32_t line, uint32_t col,
                 const char *path, const char *fmt, ...) __attribute__((format(printf, 7, 8)));

/* Applies MCP_GUARD_<SECTION>__<KEY>=value entries of `envp` to `doc`,
 * replacing or adding values (typed by the schema). Unknown or malformed
 * overrides are errors in `diag`. Returns the number of errors. */
size_t mg_schema_apply_env(struct mg_cdoc *doc, char *const *envp, struct mg_diag *diag);

/* Writes a commented configuration template of every section, in TOML or
 * YAML (format: MG_CONFIG_TOML or MG_CONFIG_YAML), into a malloc'd string. */
char *mg_schema_template(enum mg_config_format format);

/* Writes the configuration reference (Markdown tables, one per section). */
char *mg_schema_reference_markdown(void);

/* Writes the same reference as roff (.SS per section, .TP per key) for the
 * mcp-guard.toml(5) man page; malloc'd, NULL when out of memory. */
char *mg_schema_reference_man(void);

#endif
