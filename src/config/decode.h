/*
 * decode.h - internals shared by the schema decoder and the section checks.
 */
#ifndef MG_CONFIG_DECODE_H
#define MG_CONFIG_DECODE_H

#include "config/schema.h"

struct mg_decode {
	struct mg_cdoc *doc;
	struct mg_diag *diag;
	char *const *envp; /* for <secret>_env lookups; NULL = empty environment */
	const char *file;
	size_t errors;
};

/* Describes a value for "found ..." in messages: `string "abc"`, `integer 7`,
 * `a table`. Writes into `out` (always NUL-terminated). */
void mg_decode_describe(const struct mg_cnode *n, char *out, size_t size);

/* Joins a key path: "a" + "b" = "a.b"; "" + "b" = "b". Returns a malloc'd string. */
char *mg_decode_join(const char *path, const char *key);

/* Looks up NAME in envp ("NAME=value" entries); NULL when absent. */
const char *mg_decode_getenv(char *const *envp, const char *name);

/* A "did you mean" suggestion among `names` (NULL-terminated or `n` long),
 * or NULL when nothing is close. */
const char *mg_decode_suggest(const char *word, const char *const *names, size_t n);

/* true when `s` is an absolute http(s) URL with a host; on false `why` says
 * what is wrong. */
bool mg_decode_url_ok(const char *s, const char **why);

#endif
