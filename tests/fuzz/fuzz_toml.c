/*
 * fuzz_toml.c - libFuzzer target for the TOML parser (config/toml.c).
 *
 * Feeds arbitrary bytes to mg_toml_parse and frees the result; the
 * sanitizers catch memory errors, undefined behaviour and leaks, libFuzzer's
 * timeouts catch hangs. Beyond not crashing, it checks what the parser
 * promises: an error has a message and a 1-based location inside the input;
 * a tree has every node located, every table member keyed and every string
 * NUL-terminated. Seeds live in tests/fuzz/corpus/toml/.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/toml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
	if (!ok)
		abort();
}

/* Visits every node without recursion (children first, then siblings). */
static void walk(const struct mg_cnode *n, uint32_t lines)
{
	while (n) {
		check(n->loc.line >= 1 && n->loc.line <= lines && n->loc.col >= 1);
		check(n->key_loc.line >= 1 && n->key_loc.line <= lines);
		check(n->parent == NULL || n->parent->type != MG_CNODE_TABLE || n->key != NULL);
		if (n->str)
			check(n->str[n->len] == '\0');
		if (n->first) {
			n = n->first;
			continue;
		}
		while (n && !n->next)
			n = n->parent;
		if (n)
			n = n->next;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mg_cerror err;
	uint32_t lines = 1;
	for (size_t i = 0; i < size; i++)
		lines += data[i] == '\n';
	struct mg_cdoc *doc = mg_toml_parse((const char *)data, size, "fuzz.toml", &err);
	if (doc) {
		walk(mg_cdoc_root(doc), lines);
		mg_cdoc_free(doc);
		return 0;
	}
	check(err.msg[0] != '\0' && memchr(err.msg, '\0', sizeof err.msg) != NULL);
	check(err.loc.line >= 1 && err.loc.line <= lines && err.loc.col >= 1);
	check(err.loc.col <= size + 1);
	check(strcmp(err.loc.file, "fuzz.toml") == 0);
	return 0;
}
