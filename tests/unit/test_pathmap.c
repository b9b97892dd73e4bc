/*
 * test_pathmap.c - prefix routing of gateway/pathmap.c: exact entries win,
 * then the longest prefix on a segment boundary, case-sensitive; duplicates
 * refused.
 */
#include "support.h"

#include <stdio.h>
#include <string.h>

#include "gateway/pathmap.h"

static int a, b, c, d, root;

static struct mg_pathmap *sample(void)
{
	struct mg_pathmap *m = mg_pathmap_new();
	assert_non_null(m);
	assert_int_equal(mg_pathmap_add(m, "/files", true, &a, 0), 0);
	assert_int_equal(mg_pathmap_add(m, "/files/deep", true, &b, 0), 0);
	assert_int_equal(mg_pathmap_add(m, "/mcp/files", false, &a, 0), 0);
	assert_int_equal(mg_pathmap_add(m, "/files/sse", false, &a, 1), 0);
	assert_int_equal(mg_pathmap_add(m, "/github", true, &c, 0), 0);
	assert_int_equal(mg_pathmap_add(m, "/mcp", false, &d, 0), 0);
	return m;
}

static void *match(struct mg_pathmap *m, const char *path, int *kind)
{
	struct mg_pathmap_hit hit;
	if (!mg_pathmap_match(m, path, &hit))
		return NULL;
	if (kind)
		*kind = hit.kind;
	return hit.value;
}

static void test_exact_and_prefix(void **state)
{
	(void)state;
	struct mg_pathmap *m = sample();
	int kind = -1;
	assert_ptr_equal(match(m, "/files", &kind), &a);
	assert_int_equal(kind, 0);
	assert_ptr_equal(match(m, "/files/x/y", NULL), &a);
	assert_ptr_equal(match(m, "/files/deep", NULL), &b);
	assert_ptr_equal(match(m, "/files/deep/x", NULL), &b);
	assert_ptr_equal(match(m, "/files/deeper", NULL), &a); /* not below /files/deep */
	assert_ptr_equal(match(m, "/files/sse", &kind), &a);
	assert_int_equal(kind, 1); /* the exact entry, not the prefix */
	assert_ptr_equal(match(m, "/mcp/files", NULL), &a);
	assert_ptr_equal(match(m, "/mcp", NULL), &d);
	assert_null(match(m, "/mcp/other", NULL)); /* /mcp is exact only */
	assert_null(match(m, "/filesx", NULL));
	assert_null(match(m, "/Files", NULL)); /* case-sensitive */
	assert_null(match(m, "/", NULL));
	assert_null(match(m, "", NULL));
	assert_ptr_equal(match(m, "/github/", NULL), &c);
	mg_pathmap_free(m);
}

static void test_root_prefix(void **state)
{
	(void)state;
	struct mg_pathmap *m = sample();
	assert_int_equal(mg_pathmap_add(m, "/", true, &root, 0), 0);
	assert_ptr_equal(match(m, "/anything", NULL), &root);
	assert_ptr_equal(match(m, "/", NULL), &root);
	assert_ptr_equal(match(m, "/files/z", NULL), &a); /* longer prefixes still win */
	assert_ptr_equal(match(m, "/filesx", NULL), &root);
	mg_pathmap_free(m);
}

static void test_duplicates(void **state)
{
	(void)state;
	struct mg_pathmap *m = sample();
	assert_int_equal(mg_pathmap_add(m, "/files", false, &c, 0), -1);
	assert_int_equal(mg_pathmap_add(m, "/mcp", true, &c, 0), -1);
	assert_ptr_equal(match(m, "/files", NULL), &a);
	mg_pathmap_free(m);
	mg_pathmap_free(NULL);
}

static void test_many(void **state)
{
	(void)state;
	struct mg_pathmap *m = mg_pathmap_new();
	static int v[100];
	char p[32];
	for (int i = 0; i < 100; i++) {
		snprintf(p, sizeof p, "/s%d", i);
		assert_int_equal(mg_pathmap_add(m, p, true, &v[i], 0), 0);
	}
	for (int i = 0; i < 100; i++) {
		snprintf(p, sizeof p, "/s%d/mcp", i);
		assert_ptr_equal(match(m, p, NULL), &v[i]);
	}
	mg_pathmap_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exact_and_prefix),
		cmocka_unit_test(test_root_prefix),
		cmocka_unit_test(test_duplicates),
		cmocka_unit_test(test_many),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
