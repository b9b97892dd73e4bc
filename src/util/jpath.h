/*
 * jpath.h - the small JSON path language of audit redaction (and config
 * checks): `$` then segments `.key`, `..key` (at any depth), `.*` / `[*]`
 * (every member or element), `[3]` (an index), `['key']` / `["key"]`.
 * Pure syntax: evaluating a path is the caller's business.
 */
#ifndef MG_UTIL_JPATH_H
#define MG_UTIL_JPATH_H

#include <stdbool.h>
#include <stddef.h>

#define MG_JPATH_MAX_LEN      512
#define MG_JPATH_MAX_SEGMENTS 32

enum mg_jpath_kind { MG_JPATH_NAME, MG_JPATH_INDEX, MG_JPATH_ANY };

struct mg_jpath_seg {
	enum mg_jpath_kind kind;
	bool deep;    /* `..`: at any depth below */
	char *name;   /* MG_JPATH_NAME (owned) */
	size_t index; /* MG_JPATH_INDEX */
};

struct mg_jpath {
	struct mg_jpath_seg seg[MG_JPATH_MAX_SEGMENTS];
	size_t n; /* 0: `$`, the whole value */
};

/* Parses `s` into `p` (release with mg_jpath_free). Returns 0, or -1 with
 * the reason (and offset) in `err`; nothing to free then. */
int mg_jpath_parse(const char *s, struct mg_jpath *p, char *err, size_t err_size);

/* Releases the names. */
void mg_jpath_free(struct mg_jpath *p);

#endif
