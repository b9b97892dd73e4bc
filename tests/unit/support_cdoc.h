/*
 * support_cdoc.h - helpers for the configuration parser tests (TOML, YAML):
 * parse or fail, expect an exact located error, look a key up.
 *
 * The including file defines CDOC_PARSE (mg_toml_parse or mg_yaml_parse),
 * CDOC_OK_FILE and CDOC_BAD_FILE (the names used in messages) first.
 */
#ifndef MG_TEST_SUPPORT_CDOC_H
#define MG_TEST_SUPPORT_CDOC_H

#include "support.h"

#include <string.h>

#include "config/tree.h"

static struct mg_cdoc *parse_ok(const char *text)
{
	struct mg_cerror err;
	struct mg_cdoc *doc = CDOC_PARSE(text, strlen(text), CDOC_OK_FILE, &err);
	if (!doc)
		fail_msg("unexpected error %u:%u: %s", err.loc.line, err.loc.col, err.msg);
	return doc;
}

/* Parses `len` bytes that must fail at (line, col) with a message containing
 * `msg`. */
static void expect_error_n(const char *text, size_t len, uint32_t line, uint32_t col,
                           const char *msg)
{
	struct mg_cerror err;
	const char *file = CDOC_BAD_FILE;
	struct mg_cdoc *doc = CDOC_PARSE(text, len, file, &err);
	if (doc) {
		mg_cdoc_free(doc);
		fail_msg("expected an error containing '%s'", msg);
	}
	if (!strstr(err.msg, msg))
		fail_msg("message '%s' does not contain '%s'", err.msg, msg);
	assert_ptr_equal(err.loc.file, file);
	if (err.loc.line != line || err.loc.col != col)
		fail_msg("error '%s' at %u:%u, expected %u:%u", err.msg, err.loc.line, err.loc.col,
		         line, col);
}

static void expect_error(const char *text, uint32_t line, uint32_t col, const char *msg)
{
	expect_error_n(text, strlen(text), line, col, msg);
}

static struct mg_cnode *get(struct mg_cdoc *doc, struct mg_cnode *table, const char *key)
{
	struct mg_cnode *n = mg_cnode_getz(doc, table, key);
	if (!n)
		fail_msg("no key '%s'", key);
	return n;
}

#endif
