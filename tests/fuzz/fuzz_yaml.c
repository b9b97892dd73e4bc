/*
 * fuzz_yaml.c - libFuzzer target for the YAML configuration loader.
 *
 * Feeds arbitrary bytes to mg_yaml_parse and frees the result; the
 * sanitizers catch memory errors and leaks, libFuzzer's timeouts catch hangs.
 * On success the tree is walked so every node is touched. Seeds live in
 * tests/fuzz/corpus/yaml/.
 */
#include <stddef.h>
#include <stdint.h>

#include "config/yaml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Visits every node without recursion (siblings first, then children). */
static size_t walk(const struct mg_cnode *n)
{
	size_t count = 0;
	while (n) {
		count += n->len + n->key_len + 1;
		if (n->first) {
			n = n->first;
			continue;
		}
		while (n && !n->next)
			n = n->parent;
		if (n)
			n = n->next;
	}
	return count;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mg_cerror err;
	struct mg_cdoc *doc = mg_yaml_parse((const char *)data, size, "fuzz.yaml", &err);
	if (doc) {
		volatile size_t sink = walk(mg_cdoc_root(doc));
		(void)sink;
		mg_cdoc_free(doc);
	}
	return 0;
}
