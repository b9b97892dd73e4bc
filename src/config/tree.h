/*
 * tree.h - the configuration document tree that TOML and YAML both produce.
 *
 * A document (`struct mg_cdoc`) owns every node and string in one arena, so
 * a parse is released with one mg_cdoc_free(). Each node remembers where it
 * was written (file, line, column; both 1-based, column counted in bytes)
 * so that every later error - syntax, type, range, unknown key - can name
 * the exact place. Tables keep their members in insertion order and index
 * them in a document-wide hash, so lookups stay O(1) even in hostile input.
 *
 * The tree knows nothing of the gateway's schema: config/schema.c decodes it
 * into `struct mg_config`.
 */
#ifndef MG_CONFIG_TREE_H
#define MG_CONFIG_TREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Hard limits shared by both parsers. */
#define MG_CDOC_MAX_BYTES (4u * 1024 * 1024) /* input size */
#define MG_CDOC_MAX_DEPTH 64                 /* nested tables/arrays below the root */
#define MG_CDOC_MAX_NODES 1000000            /* values of all kinds */

enum mg_cnode_type {
	MG_CNODE_TABLE,
	MG_CNODE_ARRAY,
	MG_CNODE_STRING,
	MG_CNODE_INTEGER,
	MG_CNODE_FLOAT,
	MG_CNODE_BOOL,
	MG_CNODE_DATETIME,       /* offset date-time, text in `str` */
	MG_CNODE_DATETIME_LOCAL, /* local date-time, text in `str` */
	MG_CNODE_DATE_LOCAL,     /* local date, text in `str` */
	MG_CNODE_TIME_LOCAL,     /* local time, text in `str` */
	MG_CNODE_NULL,           /* YAML only (`~`, `null`, empty value) */
};

struct mg_cloc {
	const char *file; /* owned by the document; "<env>" for overrides */
	uint32_t line;    /* 1-based; 0 when unknown */
	uint32_t col;     /* 1-based byte column; 0 when unknown */
};

struct mg_cnode {
	enum mg_cnode_type type;
	struct mg_cloc loc;     /* where the value starts */
	struct mg_cloc key_loc; /* where its key is written, for table members */
	const char *key;        /* member name (may hold NUL bytes: use key_len) */
	size_t key_len;
	struct mg_cnode *parent;
	struct mg_cnode *next;  /* next sibling in insertion order */
	struct mg_cnode *first; /* first child (tables and arrays) */
	struct mg_cnode *last;
	size_t count;      /* number of children */
	const char *str;   /* STRING and date-time text (NUL-terminated; may hold NULs) */
	size_t len;        /* length of `str` */
	int64_t i;         /* INTEGER */
	double f;          /* FLOAT */
	bool b;            /* BOOL */
	unsigned flags;    /* parser-private bookkeeping (e.g. TOML table kinds) */
	uint32_t hash_idx; /* internal */
};

struct mg_cdoc;

/* Creates an empty document whose root is an empty table. `file` names the
 * source in locations (copied). Returns NULL when out of memory. */
struct mg_cdoc *mg_cdoc_new(const char *file);

/* Releases the document and every node and string it holds. NULL is fine. */
void mg_cdoc_free(struct mg_cdoc *doc);

/* The root table. */
struct mg_cnode *mg_cdoc_root(struct mg_cdoc *doc);

/* The file name given to mg_cdoc_new (owned by the document). */
const char *mg_cdoc_file(const struct mg_cdoc *doc);

/* Allocates `n` zeroed bytes that live as long as the document. NULL when out
 * of memory. */
void *mg_cdoc_alloc(struct mg_cdoc *doc, size_t n);

/* Copies `n` bytes into the document and NUL-terminates them. */
char *mg_cdoc_strndup(struct mg_cdoc *doc, const char *s, size_t n);

/* Creates a detached node of `type` located at (line, col) of the document's
 * file. Returns NULL when out of memory or past MG_CDOC_MAX_NODES. */
struct mg_cnode *mg_cnode_new(struct mg_cdoc *doc, enum mg_cnode_type type, uint32_t line,
                              uint32_t col);

/* Appends `child` to `array`. */
void mg_cnode_push(struct mg_cnode *array, struct mg_cnode *child);

/* Adds `child` to `table` under `key` (copied). Returns 0, 1 when the key
 * already exists (nothing is changed), or -1 when out of memory. */
int mg_cnode_set(struct mg_cdoc *doc, struct mg_cnode *table, const char *key, size_t key_len,
                 struct mg_cnode *child);

/* Finds the member `key` of `table`, or NULL. */
struct mg_cnode *mg_cnode_get(const struct mg_cdoc *doc, const struct mg_cnode *table,
                              const char *key, size_t key_len);

/* Convenience for NUL-terminated keys. */
struct mg_cnode *mg_cnode_getz(const struct mg_cdoc *doc, const struct mg_cnode *table,
                               const char *key);

/* Removes the member `key` from `table`; returns true when it existed. */
bool mg_cnode_remove(struct mg_cdoc *doc, struct mg_cnode *table, const char *key, size_t key_len);

/* A short name for a type ("table", "array", "string", "integer", ...). */
const char *mg_cnode_type_name(enum mg_cnode_type type);

/* A parse failure: where, and what. The message does not repeat the location. */
struct mg_cerror {
	struct mg_cloc loc;
	char msg[256];
};

#endif
